"""Frame choice (ffmpeg -r 8 semantics) and audio decoding of :mod:`extractors.decoding`."""

from __future__ import annotations

import shutil
import subprocess

import av
import numpy as np
import pytest
from extract_helpers import LLP_SAMPLE, LLP_SAMPLE_FRAMES, frame_index, make_clip, remux_faststart
from PIL import Image

from extractors.decoding import (
    DecodeError,
    VideoTimeline,
    cfr_frame_indices,
    load_audio,
    load_frames,
    read_video_timeline,
    sample_positions,
)

VFR_TIMES = np.cumsum(np.r_[0.0, np.tile([1 / 30, 1 / 10, 1 / 60, 0.2], 30)])[:110]


def ffmpeg_frames(clip, out_dir) -> list[int]:
    """Indices of the input frames ``ffmpeg -i clip -r 8`` writes as PNG files."""
    subprocess.run(
        ["ffmpeg", "-loglevel", "error", "-i", str(clip), "-r", "8", str(out_dir / "%06d.png")], check=True
    )
    return [frame_index(np.asarray(Image.open(p).convert("RGB"))) for p in sorted(out_dir.glob("*.png"))]


def test_sample_positions_use_numpy_rounding():
    positions = sample_positions(82)
    assert len(positions) == 80 and positions[0] == 0 and positions[-1] == 81
    # linspace(0, 81, 80) has steps of 81/79; rounding half to even picks these exact positions
    assert np.array_equal(positions, np.round(np.arange(80) * 81 / 79).astype(int))
    assert np.array_equal(sample_positions(80), np.arange(80))


def test_cfr_drops_and_duplicates_by_timestamp():
    # 4 fps input: each frame lasts two output ticks, so every frame is shown twice
    slow = VideoTimeline(starts=np.arange(40) / 4.0, durations=np.full(40, 0.25), nominal_fps=4.0)
    assert np.array_equal(cfr_frame_indices(slow), np.repeat(np.arange(40), 2))
    # 16 fps: frames are kept while they trail the output clock by at most 1.1 ticks, so after 0, 1, 2, 3
    # every other frame survives, two ticks late
    fast = VideoTimeline(starts=np.arange(160) / 16.0, durations=np.full(160, 1 / 16), nominal_fps=16.0)
    chosen = cfr_frame_indices(fast)
    assert (
        chosen[:6].tolist() == [0, 1, 2, 3, 5, 7] and np.all(np.diff(chosen[3:]) == 2) and chosen[-1] == 159
    )
    # a gap (no frame between 2 s and 4 s) is filled with the frame before it
    gap_starts = np.r_[np.arange(16) / 8.0, 4.0 + np.arange(16) / 8.0]
    gap = VideoTimeline(starts=gap_starts, durations=np.full(32, 1 / 8), nominal_fps=8.0)
    chosen = cfr_frame_indices(gap)
    assert np.array_equal(chosen[:16], np.arange(16))
    assert np.all(chosen[16:31] == 15) and np.all(chosen[31:33] == 16)


@pytest.mark.skipif(not LLP_SAMPLE.is_file(), reason=f"LLP sample clip absent ({LLP_SAMPLE})")
def test_llp_sample_matches_the_authors_frames():
    authors = sorted(LLP_SAMPLE_FRAMES.glob("*.jpg"))
    assert len(authors) == 82
    assert len(cfr_frame_indices(read_video_timeline(LLP_SAMPLE))) == 82
    sampled = load_frames(LLP_SAMPLE).frames.astype(np.float32)
    reference = np.stack([np.asarray(Image.open(authors[p]).convert("RGB")) for p in sample_positions(82)])
    errors = np.abs(sampled - reference).mean(axis=(1, 2, 3))
    assert errors.max() < 8.0, f"JPEG-level difference expected, worst frame differs by {errors.max():.1f}"
    # the comparison can fail: the neighbouring author frames differ far more from our choice
    shifted = np.stack(
        [np.asarray(Image.open(authors[min(p + 1, 81)]).convert("RGB")) for p in sample_positions(82)]
    )
    assert np.abs(sampled - shifted).mean() > 2 * errors.mean()


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg binary not installed")
@pytest.mark.parametrize(
    "clip_args",
    [
        {"seconds": 10.03, "fps": 29.97},
        {"seconds": 10.0, "fps": 5},
        {"seconds": 10.0, "fps": 60},
        {"seconds": 10.0, "frame_times": VFR_TIMES},
        {"seconds": 10.0, "frame_times": np.arange(0.5, 10.0, 1 / 25)},
    ],
    ids=["29.97fps", "5fps", "60fps", "variable", "late-start"],
)
def test_frame_choice_matches_ffmpeg(tmp_path, clip_args):
    clip = make_clip(tmp_path / "clip.mp4", audio=False, **clip_args)
    out_dir = tmp_path / "frames"
    out_dir.mkdir()
    expected = ffmpeg_frames(clip, out_dir)
    chosen = cfr_frame_indices(read_video_timeline(clip))
    assert chosen.tolist() == expected
    slots = np.r_[chosen, np.full(max(0, 80 - len(chosen)), chosen[-1])]  # short clips: last frame repeated
    decoded = load_frames(clip).frames
    assert [frame_index(f) for f in decoded] == slots[sample_positions(len(slots))].tolist()


def test_long_clip_uses_first_ten_seconds(tmp_path):
    clip = make_clip(tmp_path / "long.mp4", seconds=12.5, fps=25, audio_rate=16000)
    timeline = read_video_timeline(clip)
    assert timeline.starts.max() < 10.0 and len(timeline.starts) == 250
    sampled = load_frames(clip)
    assert sampled.padded_seconds == 0.0 and max(frame_index(f) for f in sampled.frames) < 250
    audio = load_audio(clip)
    assert audio.waveform.shape == (160000,) and audio.padded_seconds == 0.0


def test_short_clip_is_padded_and_reported(tmp_path):
    clip = make_clip(tmp_path / "short.mp4", seconds=4.0, fps=25)
    sampled = load_frames(clip)
    indices = [frame_index(f) for f in sampled.frames]
    assert sampled.frames.shape[0] == 80 and sampled.padded_seconds == pytest.approx(6.0, abs=0.1)
    # real time is kept: 4 s of frames fill the first ~32 slots, then the last frame repeats
    assert indices[:2] == [0, 1] and indices[-1] == 99 and indices.count(99) >= 45
    audio = load_audio(clip)
    assert audio.waveform.shape == (160000,) and audio.padded_seconds == pytest.approx(6.0, abs=0.1)
    assert np.all(audio.waveform[-80000:] == 0) and np.abs(audio.waveform[:32000]).max() > 0.05


@pytest.mark.parametrize("size", [(16, 16), (1280, 720)], ids=["tiny", "large"])
def test_tiny_and_large_resolutions(tmp_path, size):
    clip = make_clip(tmp_path / "clip.mp4", seconds=1.0, fps=8, size=size, audio=False)
    frames = load_frames(clip).frames
    assert frames.shape == (80, size[1], size[0], 3) and frames.dtype == np.uint8


@pytest.mark.parametrize("rate", [8000, 44100, 48000])
@pytest.mark.parametrize("channels", [1, 2, 6], ids=["mono", "stereo", "5.1"])
def test_audio_rates_and_layouts(tmp_path, rate, channels):
    clip = make_clip(tmp_path / "clip.mp4", seconds=2.0, video=False, audio_rate=rate, channels=channels)
    audio = load_audio(clip)
    assert audio.waveform.shape == (160000,) and audio.waveform.dtype == np.float32
    assert audio.channels == channels and audio.source_rate == rate
    assert np.isfinite(audio.waveform).all() and np.abs(audio.waveform[:16000]).max() > 0.01


def test_stereo_is_averaged_not_library_downmixed(tmp_path):
    """Left = sine, right = silence: (L+R)/2 halves the level; a 1/sqrt(2) downmix would give 0.71."""
    mono = load_audio(make_clip(tmp_path / "m.mp4", seconds=2, video=False, channels=1, amplitudes=(0.5,)))
    stereo = load_audio(
        make_clip(tmp_path / "s.mp4", seconds=2, video=False, channels=2, amplitudes=(0.5, 0.0))
    )
    middle = slice(4000, 28000)
    ratio = np.sqrt(np.mean(stereo.waveform[middle] ** 2) / np.mean(mono.waveform[middle] ** 2))
    assert ratio == pytest.approx(0.5, abs=0.03)


def test_missing_streams_and_broken_files(tmp_path):
    silent = make_clip(tmp_path / "silent.mp4", seconds=1, audio=False)
    with pytest.raises(DecodeError, match="no audio stream"):
        load_audio(silent)
    audio_only = make_clip(tmp_path / "audio_only.mp4", seconds=1, video=False)
    with pytest.raises(DecodeError, match="no video stream"):
        load_frames(audio_only)
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    with pytest.raises((DecodeError, av.error.FFmpegError)):
        load_frames(empty)


def test_truncated_faststart_clip_keeps_what_was_downloaded(tmp_path):
    """With the index at the front, a cut-off download still decodes: the frames present, then padding."""
    whole = remux_faststart(make_clip(tmp_path / "src.mp4", seconds=10.0, fps=25), tmp_path / "fast.mp4")
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    sampled = load_frames(cut)
    indices = [frame_index(f) for f in sampled.frames]
    assert 2.0 < sampled.padded_seconds < 8.0
    assert indices == sorted(indices) and indices[-1] == indices[-10] < 249
    assert load_audio(cut).padded_seconds > 2.0
