"""``avvp extract`` end to end on synthetic clips: good, odd and broken clips in one shard (the clips that
stop a whole shard, and other refused input, are in tests/test_bad_input.py)."""

from __future__ import annotations

import urllib.error

import numpy as np
import pytest
import torch
from extract_helpers import make_clip

from avvp.cli import main
from avvp.data.features import FEATURE_SHAPES, LLP_KINDS, FeatureStore, FeatureStoreWriter
from avvp.errors import InputError
from avvp.feature_identity import identity_differences, store_identity
from extractors import visual
from extractors.networks import NetworkOptions, build_networks
from extractors.pipeline import (
    DecodingPlan,
    decoding_plan,
    extract_shard,
    list_videos,
    manifest_path,
    read_manifest,
    warn_non_llp_ids,
)
from extractors.weights import load_checkpoint, parse_weights_option

KINDS = list(LLP_KINDS)
GOOD = {
    "abcdefghijk_0_10": {"seconds": 10.0, "fps": 25, "audio_rate": 44100},
    "fps5": {"seconds": 10.0, "fps": 5, "audio_rate": 48000},
    "fps60": {"seconds": 10.0, "fps": 60, "audio_rate": 8000, "channels": 1},
    "variable": {"seconds": 10.5, "frame_times": np.cumsum(np.r_[0.0, np.tile([1 / 30, 0.1, 0.2], 40)])[:95]},
    "long": {"seconds": 12.0, "fps": 25, "channels": 6, "audio_rate": 48000},
    "short": {"seconds": 4.0, "fps": 25},
    "tiny": {"seconds": 10.0, "fps": 10, "size": (16, 16)},
    "large": {"seconds": 10.0, "fps": 1, "size": (1280, 720)},
}
VISUAL_ONLY = {"no_audio": {"seconds": 10.0, "audio": False}}
AUDIO_ONLY = {"no_video": {"seconds": 10.0, "video": False}}
BROKEN = ("empty", "truncated", "not_video")


@pytest.fixture(scope="module")
def clip_dir(tmp_path_factory):
    directory = tmp_path_factory.mktemp("clips")
    for name, args in {**GOOD, **VISUAL_ONLY, **AUDIO_ONLY}.items():
        make_clip(directory / f"{name}.mp4", **args)
    (directory / "empty.mp4").write_bytes(b"")
    whole = make_clip(directory.parent / "whole.mp4", seconds=10.0, fps=25).read_bytes()
    (directory / "truncated.mp4").write_bytes(whole[: len(whole) // 2])
    (directory / "not_video.mp4").write_text("this is a text file, not a video\n")
    (directory / "notes.txt").write_text("ignored: not a video suffix\n")
    return directory


@pytest.fixture(scope="module")
def extracted(clip_dir, tmp_path_factory):
    """One CLI run over every clip with the three real architectures (random weights, small inputs)."""
    shard = tmp_path_factory.mktemp("out") / "shard.h5"
    argv = ["extract", "--videos", str(clip_dir), "--output", str(shard), "--weights", "random"]
    argv += [
        "--image-size",
        "16",
        "--clip-size",
        "16",
        "--workers",
        "1",
        "--batch-clips",
        "3",
        "--no-progress",
    ]
    argv += ["--device", "cpu"]
    assert main(argv) == 0
    return shard


def test_every_extractor_writes_right_shapes_and_finite_values(extracted):
    with FeatureStore(extracted) as store:
        assert sorted(store.kinds) == sorted(KINDS)
        for kind in KINDS:
            ids = store.video_ids(kind)
            features = store.read(kind, ids)
            assert features.shape == (len(ids), *FEATURE_SHAPES[kind])
            assert np.isfinite(features).all() and features.std() > 0
            assert store.attrs(kind)["weights"] == "random-init(seed=0)"
        # different clips give different features (the network sees the frames)
        resnet = store.read("resnet152", ["abcdefghijk_0_10", "short"])
        assert not np.allclose(resnet[0], resnet[1])


def test_store_records_sampling_and_demo_sizes(extracted):
    with FeatureStore(extracted) as store:
        resnet, r2plus1d, vggish = (store.attrs(k) for k in ("resnet152", "r2plus1d", "vggish"))
    assert resnet["crop"] == 16 and resnet["fps"] == 8.0 and resnet["frames"] == 80
    assert r2plus1d["frame_size"] == 16 and r2plus1d["snippet_frames"] == 8
    assert vggish["backend"] == "torch" and vggish["log_offset"] == 0.01
    assert "torch" in resnet["versions"]
    # the store holds each network's record: its identity (what parse checks) and the package versions
    options = NetworkOptions(weights=dict.fromkeys(KINDS, "random"), image_size=16, clip_size=16)
    with FeatureStore(extracted) as store:
        for network in build_networks(KINDS, options, torch.device("cpu")):
            recorded = store_identity(store, network.kind)
            assert identity_differences(network.record.identity(), recorded, "the store") == []


def test_bad_clips_are_recorded_and_skipped(extracted):
    with FeatureStore(extracted) as store:
        visual_ids = set(store.video_ids("resnet152"))
        assert visual_ids == set(store.video_ids("r2plus1d"))
        audio_ids = set(store.video_ids("vggish"))
    assert visual_ids == set(GOOD) | set(VISUAL_ONLY)
    assert audio_ids == set(GOOD) | set(AUDIO_ONLY)
    rows = {(f.video_id, f.stage): f.reason for f in read_manifest(manifest_path(extracted))}
    for name in BROKEN:
        assert (name, "decode-video") in rows and (name, "decode-audio") in rows
    assert "no audio stream" in rows[("no_audio", "decode-audio")]
    assert "no video stream" in rows[("no_video", "decode-video")]
    assert "6.00 s" in rows[("short", "pad-video")] and ("short", "pad-audio") in rows
    padded = {vid for vid, stage in rows if stage.startswith("pad-")}
    assert padded == {"short"}, "only the 4-s clip is short; the 12-s clip is cut to its first 10 s"


def test_list_file_input(clip_dir, tmp_path):
    listing = tmp_path / "clips.txt"
    listing.write_text(f"# two clips\n{clip_dir / 'short.mp4'}\n\n{clip_dir / 'tiny.mp4'}\n")
    assert [p.stem for p in list_videos(listing)] == ["short", "tiny"]
    assert list_videos(clip_dir / "short.mp4") == [clip_dir / "short.mp4"]  # one video, not a list file
    assert "notes" not in [p.stem for p in list_videos(clip_dir)]


def _write_wav(path, seconds: float = 10.0, rate: int = 16000):
    """A mono 16-bit WAV file of a 440 Hz tone."""
    import wave

    samples = (3000 * np.sin(2 * np.pi * 440 * np.arange(int(seconds * rate)) / rate)).astype("<i2")
    with wave.open(str(path), "wb") as handle:
        handle.setnchannels(1)
        handle.setsampwidth(2)
        handle.setframerate(rate)
        handle.writeframes(samples.tobytes())
    return path


def test_an_audio_file_is_a_clip_not_a_list_file(tmp_path):
    wav = _write_wav(tmp_path / "tone.wav", seconds=0.1)
    assert list_videos(wav) == [wav]
    unnamed = tmp_path / "tone.dat"  # no known suffix: the RIFF signature says it is media
    unnamed.write_bytes(wav.read_bytes())
    assert list_videos(unnamed) == [unnamed]
    mp3_frame = tmp_path / "frame.bin"  # an MPEG audio frame header, no ID3 tag
    mp3_frame.write_bytes(b"\xff\xfb\x90\x64" + bytes(100))
    assert list_videos(mp3_frame) == [mp3_frame]
    listing = tmp_path / "clips.list"  # text without a known suffix is still a list file
    listing.write_text(f"{wav}\n")
    assert list_videos(listing) == [wav]


def test_extract_takes_the_audio_features_of_an_audio_file(tmp_path):
    wav = _write_wav(tmp_path / "abcdefghijk_0_10.wav")
    output = tmp_path / "audio.h5"
    argv = ["extract", "--videos", str(wav), "--kinds", "vggish", "--output", str(output)]
    assert main([*argv, "--weights", "random", "--device", "cpu", "--workers", "0", "--no-progress"]) == 0
    with FeatureStore(output) as store:
        assert store.video_ids("vggish") == ["abcdefghijk_0_10"]


def test_a_byte_order_mark_does_not_drop_the_first_clip_of_a_list(clip_dir, tmp_path):
    listing = tmp_path / "clips.txt"
    listing.write_text(f"\ufeff{clip_dir / 'short.mp4'}\n{clip_dir / 'tiny.mp4'}\n", encoding="utf-8")
    assert list_videos(listing) == [clip_dir / "short.mp4", clip_dir / "tiny.mp4"]


def test_a_line_break_or_tab_in_a_file_name_is_refused_in_one_line(clip_dir, tmp_path):
    for name in ("two\nlines.mp4", "a\ttab.mp4", "cr\r.mp4"):
        folder = tmp_path / f"f{len(name)}{name[-5]}"
        folder.mkdir()
        (folder / name).write_bytes((clip_dir / "short.mp4").read_bytes())
        with pytest.raises(InputError, match="the file name holds a tab or line break") as raised:
            list_videos(folder)
        assert "\n" not in str(raised.value) and repr(str(folder / name)) in str(raised.value)


@pytest.fixture(scope="module")
def small_networks():
    options = NetworkOptions(weights=dict.fromkeys(KINDS, "random"), image_size=16, clip_size=16)
    return build_networks(["r2plus1d", "vggish"], options, torch.device("cpu"))


def _contents(shard):
    with FeatureStore(shard) as store:
        return {
            kind: (store.video_ids(kind), store.dataset(kind)[:], store.attrs(kind)) for kind in store.kinds
        }


def test_interrupted_shard_leaves_nothing_and_rerun_is_identical(
    clip_dir, tmp_path, small_networks, monkeypatch
):
    videos = [clip_dir / f"{name}.mp4" for name in ("abcdefghijk_0_10", "empty", "short", "no_video")]
    first = tmp_path / "first.h5"
    extract_shard(videos, first, small_networks, workers=0, batch_clips=2, progress=False)

    shard = tmp_path / "shard.h5"
    calls = {"n": 0}
    original_add = FeatureStoreWriter.add

    def interrupt_after_two(self, kind, video_id, features):
        calls["n"] += 1
        if calls["n"] > 2:
            raise KeyboardInterrupt
        original_add(self, kind, video_id, features)

    with monkeypatch.context() as patch:
        patch.setattr("avvp.data.features.FeatureStoreWriter.add", interrupt_after_two)
        with pytest.raises(KeyboardInterrupt):
            extract_shard(videos, shard, small_networks, workers=0, batch_clips=2, progress=False)
    assert not shard.exists() and not manifest_path(shard).exists()
    assert not list(tmp_path.glob(".shard.h5.*")), "no temporary file is left behind"

    extract_shard(videos, shard, small_networks, workers=1, batch_clips=2, progress=False)
    expected, rerun = _contents(first), _contents(shard)
    assert expected.keys() == rerun.keys()
    for kind in expected:
        assert expected[kind][0] == rerun[kind][0] and expected[kind][2] == rerun[kind][2]
        np.testing.assert_array_equal(expected[kind][1], rerun[kind][1])
    assert manifest_path(first).read_text() == manifest_path(shard).read_text()
    assert first.read_bytes() == shard.read_bytes(), "the rerun writes the very same file"


def test_clip_ids_that_are_not_llp_filenames_are_named_in_a_warning(clip_dir, tmp_path, caplog):
    videos = [clip_dir / f"{name}.mp4" for name in ("abcdefghijk_0_10", "short", "fps5", "fps60", "long")]
    videos += [clip_dir / f"{name}.mp4" for name in ("tiny", "large", "no_audio")]
    warn_non_llp_ids(videos, tmp_path / "shard.h5")
    (record,) = caplog.records
    assert (
        record.levelname == "WARNING"
        and "shard.h5: 7 of 8 clip id(s) are not LLP filenames" in record.message
    )
    assert record.message.endswith(": short, fps5, fps60, long, tiny, ... (2 more)")
    caplog.clear()
    warn_non_llp_ids(videos[:1], tmp_path / "shard.h5")
    assert not caplog.records


def test_decoding_plan_follows_the_cores_and_the_device(monkeypatch):
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert decoding_plan(cpu, cores=2) == DecodingPlan(workers=0, threads=2)  # decoding between batches
    assert decoding_plan(cpu, cores=15) == DecodingPlan(workers=0, threads=15)
    assert decoding_plan(cpu, cores=64) == DecodingPlan(workers=4, threads=60)
    assert decoding_plan(cuda, cores=1) == DecodingPlan(workers=1, threads=1)
    assert decoding_plan(cuda, cores=8) == DecodingPlan(
        workers=7, threads=1
    )  # decoding keeps up with the GPU
    assert decoding_plan(cuda, cores=64) == DecodingPlan(workers=16, threads=48)
    assert decoding_plan(cpu, cores=2, workers=2) == DecodingPlan(workers=2, threads=1)  # --workers 2
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: {0, 3, 5})  # e.g. a SLURM job's 3 cores
    assert decoding_plan(cpu) == DecodingPlan(workers=0, threads=3)
    assert decoding_plan(cuda) == DecodingPlan(workers=2, threads=1)


def test_pretrained_offline_says_how_to_provide_the_file(monkeypatch, tmp_path):
    def offline(weights=None):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(visual, "resnet152", offline)
    with pytest.raises(InputError, match=r"resnet152: cannot load.*resnet152-.*\.pth.*--weights"):
        visual.build_resnet152("pretrained", seed=0, cache=tmp_path)


def test_weights_option_and_checkpoint_errors(tmp_path):
    assert parse_weights_option("random", KINDS) == dict.fromkeys(KINDS, "random")
    checkpoint = tmp_path / "tiny.pt"
    torch.save({"weight": torch.zeros(2, 2)}, checkpoint)
    mixed = parse_weights_option(f"vggish={checkpoint},r2plus1d=random", KINDS)
    assert mixed == {"vggish": str(checkpoint), "resnet152": "pretrained", "r2plus1d": "random"}
    with pytest.raises(InputError, match="KIND=CHOICE"):
        parse_weights_option("audio=random", KINDS)
    with pytest.raises(InputError, match=r"tiny.pt: does not fit Linear"):
        load_checkpoint(torch.nn.Linear(3, 3), checkpoint)
