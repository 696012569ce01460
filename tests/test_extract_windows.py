"""Consecutive 10-s windows of a video of any length (:mod:`extractors.windows`): each window is the clip
``avvp extract`` would see, checked feature for feature against clips cut from the same file."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from extract_helpers import cut_clip, frame_index, make_clip, make_intra_clip

from avvp.data.features import FEATURE_SHAPES, LLP_KINDS, FeatureStore
from extractors import decoding
from extractors.decoding import DecodeError, VideoFile, load_audio, load_frames
from extractors.networks import NetworkOptions, build_networks
from extractors.pipeline import extract_shard, manifest_path, read_manifest
from extractors.windows import THUMBNAIL_HEIGHT, covering_count, extract_windows

KINDS = list(LLP_KINDS)
LONG_CUTS = {"long": (0.0, 10.0), "long_10_20": (10.0, 20.0), "long_20_25": (20.0, 30.0)}
"""The 25-s clip's windows as clips of their own: ``long`` itself (``avvp extract`` uses its first 10 s),
and stream copies of the second and the third (5-s) window."""


@pytest.fixture(scope="module")
def networks():
    options = NetworkOptions(weights=dict.fromkeys(KINDS, "random"), image_size=16, clip_size=16)
    return build_networks(KINDS, options, torch.device("cpu"))


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    directory = tmp_path_factory.mktemp("windows")
    long = make_intra_clip(directory / "long.mkv", seconds=25.0)
    clips = {"long": long}
    for name, span in list(LONG_CUTS.items())[1:]:
        clips[name] = cut_clip(long, directory / f"{name}.mkv", *span)
    clips["short"] = make_clip(directory / "short.mp4", seconds=4.0, fps=25)
    clips["silent"] = make_clip(directory / "silent.mp4", seconds=10.0, fps=25, audio=False)
    return clips


@pytest.fixture(scope="module")
def long_windows(videos, networks):
    return extract_windows(videos["long"], networks, batch_windows=2)


@pytest.fixture(scope="module")
def extracted(videos, networks, tmp_path_factory):
    """``avvp extract``'s features (kind -> video id -> [T, D]) and manifest rows of the clips."""
    shard = tmp_path_factory.mktemp("shard") / "shard.h5"
    clips = [videos[name] for name in (*LONG_CUTS, "short")]
    extract_shard(clips, shard, networks, workers=0, batch_clips=4, progress=False)
    with FeatureStore(shard) as store:
        features = {
            kind: dict(zip(store.video_ids(kind), store.read(kind, store.video_ids(kind)), strict=True))
            for kind in KINDS
        }
    rows = {(f.video_id, f.stage): f.reason for f in read_manifest(manifest_path(shard))}
    return features, rows


def test_a_25_s_video_gives_three_windows(long_windows):
    assert long_windows.window_starts == [0.0, 10.0, 20.0]
    assert long_windows.duration == pytest.approx(25.0, abs=0.05)
    assert long_windows.has_audio and long_windows.waveform.shape == (25 * 16000,)
    assert long_windows.waveform.dtype == np.float32
    assert sorted(long_windows.features) == sorted(KINDS)
    for kind, features in long_windows.features.items():
        assert features.shape == (3, *FEATURE_SHAPES[kind]) and features.dtype == np.float32
        assert np.isfinite(features).all()
        assert not np.allclose(features[0], features[1]), f"{kind}: windows see different content"


def test_every_window_equals_avvp_extract_on_that_clip(long_windows, extracted):
    """Window w of the 25-s video is, feature for feature, what ``avvp extract`` gives for the clip of those
    10 s; the third window is padded exactly as the 5-s clip is."""
    features, rows = extracted
    for window, name in enumerate(LONG_CUTS):
        for kind in KINDS:
            np.testing.assert_allclose(
                long_windows.features[kind][window], features[kind][name], rtol=1e-5, atol=1e-6, err_msg=kind
            )
    assert "5.00 s" in rows[("long_20_25", "pad-video")] and "5.00 s" in rows[("long_20_25", "pad-audio")]


def test_a_4_s_video_gives_one_padded_window(videos, networks, extracted):
    windows = extract_windows(videos["short"], networks)
    assert windows.window_starts == [0.0] and windows.duration == pytest.approx(4.0, abs=0.1)
    features, rows = extracted
    assert ("short", "pad-video") in rows and ("short", "pad-audio") in rows
    for kind in KINDS:
        assert windows.features[kind].shape == (1, *FEATURE_SHAPES[kind])
        np.testing.assert_allclose(windows.features[kind][0], features[kind]["short"], rtol=1e-5, atol=1e-6)
    assert len(windows.thumbnails) == 4


def test_video_without_audio_has_visual_kinds_only(videos, networks):
    windows = extract_windows(videos["silent"], networks)
    assert not windows.has_audio and windows.waveform is None
    assert sorted(windows.features) == ["r2plus1d", "resnet152"]
    assert windows.window_starts == [0.0] and windows.duration == pytest.approx(10.0)


def test_thumbnails_one_per_second_with_their_times(long_windows):
    thumbnails, times = long_windows.thumbnails, long_windows.thumbnail_times
    # 32x24 frames, 64 px high: aspect kept
    assert thumbnails.shape == (25, THUMBNAIL_HEIGHT, round(32 * THUMBNAIL_HEIGHT / 24), 3)
    assert thumbnails.dtype == np.uint8 and times.shape == (25,)
    assert np.array_equal(np.floor(times), np.arange(25)), "one thumbnail inside each second"
    # each thumbnail is the 25-fps frame presented at its time
    assert [frame_index(t) for t in thumbnails] == np.rint(times * 25).astype(int).tolist()


def test_offset_decoding_equals_decoding_the_cut_clip(videos):
    for name, (start, _) in LONG_CUTS.items():
        ours, theirs = load_frames(videos["long"], start=start), load_frames(videos[name])
        assert np.array_equal(ours.frames, theirs.frames)
        assert ours.padded_seconds == pytest.approx(theirs.padded_seconds)
        np.testing.assert_allclose(ours.times, theirs.times, atol=1e-9)
        ours, theirs = load_audio(videos["long"], start=start), load_audio(videos[name])
        assert np.array_equal(ours.waveform, theirs.waveform) and ours.padded_seconds == theirs.padded_seconds


def test_pyav_fallback_reads_windows_in_any_order(videos, monkeypatch):
    with VideoFile(videos["long"]) as video:
        expected = {start: video.sample(start).frames for start in (0.0, 10.0, 20.0)}

    def refuse(*args):
        raise RuntimeError("decord disabled")

    monkeypatch.setattr(decoding._DecordFrames, "__init__", refuse)
    with VideoFile(videos["long"]) as video:
        for start in (10.0, 20.0, 0.0):  # backwards after 20 s: PyAV reopens the file
            sampled = video.sample(start)
            assert sampled.decoder == "pyav" and np.array_equal(sampled.frames, expected[start])


def test_window_after_the_video_stream_shows_its_last_frame(videos):
    with VideoFile(videos["short"]) as video:
        sampled = video.sample(10.0)
    assert [frame_index(f) for f in sampled.frames] == [99] * 80 and sampled.padded_seconds == 10.0


def test_unreadable_files_raise_naming_the_file(videos, networks, tmp_path):
    text = tmp_path / "text.mp4"
    text.write_text("not a video\n")
    whole = videos["short"].read_bytes()
    truncated = tmp_path / "truncated.mp4"
    truncated.write_bytes(whole[: len(whole) // 2])
    audio_only = make_clip(tmp_path / "audio_only.mp4", seconds=2.0, video=False)
    cases = {text: "Invalid data", truncated: "Invalid data", tmp_path / "missing.mp4": "No such file"}
    cases[audio_only] = "no video stream"
    for path, problem in cases.items():
        with pytest.raises(DecodeError, match=f"^{path}: .*{problem}"):
            extract_windows(path, networks)


@pytest.mark.parametrize(
    ("duration", "windows"), [(25.0, 3), (4.0, 1), (0.04, 1), (10.0, 1), (10.024, 1), (10.2, 2), (20.0, 2)]
)
def test_window_count_ignores_a_trailing_eighth_of_a_second(duration, windows):
    assert covering_count(duration, 10.0) == windows
