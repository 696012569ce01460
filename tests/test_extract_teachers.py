"""``avvp extract --kinds clip,clap,clap_segments`` on synthetic clips with tiny random-init CLIP and CLAP of
the real classes: shapes, prompt embeddings in the store, identity, failure manifest, and the preprocessing
against transformers' own (CLAP's log-mel, CLIP's logits)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from extract_helpers import frame_colour, make_clip

from avvp.cli import main
from avvp.data.features import FEATURE_SHAPES, FeatureStore, merge_stores
from avvp.errors import InputError
from avvp.feature_identity import identity_differences, store_identity
from avvp.parsing.networks import network_options
from extractors import clap, clip
from extractors.decoding import load_audio
from extractors.networks import NetworkOptions, build_networks
from extractors.pipeline import manifest_path, read_manifest

TEACHER_KINDS = ["clip", "clap", "clap_segments"]
GOOD = ("aaaaaaaaaaa_0_10", "bbbbbbbbbbb_0_10")


def extract(videos, output, seed=0, extra=()):
    argv = ["extract", "--videos", str(videos), "--output", str(output), "--kinds", ",".join(TEACHER_KINDS)]
    argv += ["--weights", "random", "--seed", str(seed), "--clip-model", "tiny", "--clap-model", "tiny"]
    argv += ["--device", "cpu", "--no-progress", "--batch-clips", "2", *extra]
    assert main(argv) == 0
    return output


@pytest.fixture(scope="module")
def clip_dir(tmp_path_factory):
    directory = tmp_path_factory.mktemp("teacher_clips")
    make_clip(directory / f"{GOOD[0]}.mp4", seconds=10.0, fps=8, size=(40, 30), audio_rate=44100)
    make_clip(directory / f"{GOOD[1]}.mp4", seconds=10.0, fps=25, size=(32, 32), channels=1)
    make_clip(directory / "silent_0_10.mp4", seconds=10.0, fps=8, size=(32, 24), audio=False)
    return directory


@pytest.fixture(scope="module")
def shard(clip_dir, tmp_path_factory):
    return extract(clip_dir, tmp_path_factory.mktemp("teacher_out") / "shard.h5")


def test_shapes_norms_and_prompt_embeddings(shard):
    with FeatureStore(shard) as store:
        assert sorted(store.kinds) == sorted(TEACHER_KINDS)
        assert sorted(store.video_ids("clip")) == sorted([*GOOD, "silent_0_10"])
        assert sorted(store.video_ids("clap")) == sorted(GOOD)  # no audio: no CLAP features
        for kind in TEACHER_KINDS:
            features = store.read(kind, list(GOOD))
            assert features.shape == (2, *FEATURE_SHAPES[kind]) and np.isfinite(features).all()
            assert store.attrs(kind)["weights"] == "random-init(seed=0)"
            assert store.attrs(kind)["model"] == "tiny"
        for kind in ("clip", "clap_segments"):  # unit embeddings, as VALOR stores and compares them
            np.testing.assert_allclose(np.linalg.norm(store.read(kind, list(GOOD)), axis=-1), 1.0, rtol=1e-5)
        clip_text, clap_text = store.text_embeddings("clip"), store.text_embeddings("clap_segments")
        assert store.text_embeddings("clap") is None
    assert clip_text.texts == clip.PROMPTS and clip_text.embeddings.shape == (25, 768)
    assert clap_text.texts[0] == "This is a sound of speech" and clap_text.embeddings.shape == (25, 512)
    np.testing.assert_allclose(np.linalg.norm(clap_text.embeddings, axis=1), 1.0, rtol=1e-5)
    assert clip_text.logit_scale == pytest.approx(1 / 0.07, rel=1e-4)  # CLIP's initial scale


def test_missing_audio_is_in_the_manifest(shard):
    rows = read_manifest(manifest_path(shard))
    stages = {(row.video_id, row.stage) for row in rows}
    assert ("silent_0_10", "decode-audio-48k") in stages


def test_same_seed_same_features_other_seed_other_identity(clip_dir, shard, tmp_path):
    again = extract(clip_dir, tmp_path / "again.h5")
    other = extract(clip_dir, tmp_path / "other.h5", seed=1)
    with FeatureStore(shard) as a, FeatureStore(again) as b, FeatureStore(other) as c:
        for kind in TEACHER_KINDS:
            np.testing.assert_array_equal(a.read(kind, list(GOOD)), b.read(kind, list(GOOD)))
            assert identity_differences(store_identity(a, kind), store_identity(b, kind), "again") == []
            differences = identity_differences(store_identity(a, kind), store_identity(c, kind), "other")
            assert any(d.startswith("weights:") for d in differences)
        assert not a.text_embeddings("clip").same_as(c.text_embeddings("clip"))


def test_merge_keeps_prompt_embeddings_and_refuses_other_prompts(shard, clip_dir, tmp_path):
    merged = tmp_path / "merged.h5"
    single = tmp_path / "single"
    single.mkdir()
    (single / f"{GOOD[0]}.mp4").symlink_to(clip_dir / f"{GOOD[0]}.mp4")
    merge_stores([extract(single, tmp_path / "part.h5")], merged)
    with FeatureStore(merged) as store, FeatureStore(shard) as original:
        assert store.text_embeddings("clip").same_as(original.text_embeddings("clip"))
    with pytest.raises(InputError, match="differ"):  # other seed: other attributes, refused
        merge_stores([shard, extract(single, tmp_path / "seed1.h5", seed=1)], tmp_path / "bad.h5")


def test_parse_rebuilds_the_recorded_networks(shard):
    with FeatureStore(shard) as store:
        recorded = {kind: store_identity(store, kind) for kind in TEACHER_KINDS}
    options = NetworkOptions(**network_options(recorded, TEACHER_KINDS))
    assert (options.clip_model, options.clap_model, options.seed) == ("tiny", "tiny", 0)
    for network in build_networks(TEACHER_KINDS, options, torch.device("cpu")):
        assert identity_differences(recorded[network.kind], network.record.identity(), "networks") == []


def test_segment_frames_are_one_per_second():
    frames = np.stack([np.full((8, 8, 3), frame_colour(i), np.uint8) for i in range(80)])
    chosen = clip.clip_inputs(frames, size=4)
    assert chosen.shape == (10, 3, 4, 4)
    expected = np.array([frame_colour(i) for i in clip.FRAME_PICKS], np.float32) / 255
    np.testing.assert_allclose(chosen[:, :, 0, 0].numpy(), expected, atol=1e-6)
    assert clip.FRAME_PICKS.tolist() == [0, 9, 18, 26, 35, 44, 53, 61, 70, 79]


def test_clap_log_mel_matches_transformers_fused_frontend():
    from transformers import ClapFeatureExtractor

    rng = np.random.default_rng(0)
    second = (0.3 * rng.standard_normal(clap.SAMPLE_RATE)).astype(np.float32)
    waveform = np.tile(second, 10)
    extractor = ClapFeatureExtractor(frequency_min=clap.F_MIN, frequency_max=clap.F_MAX)
    theirs = extractor(clap.quantize(second), sampling_rate=clap.SAMPLE_RATE, return_tensors="np")
    ours = clap.segment_inputs(waveform)
    assert ours.shape == (10, 1001, 64)
    # (transformers, like LAION, marks one clip of a batch 'longer' when none is; its mel is the same)
    np.testing.assert_allclose(ours[0].numpy(), theirs["input_features"][0, 0], atol=2e-3)
    np.testing.assert_allclose(ours[0].numpy(), ours[9].numpy(), atol=1e-5)


def test_logits_are_clips_logits_per_image():
    from avvp.teachers.pseudo_labels import segment_logits

    loaded = clip.load_clip("tiny", "random", 3)
    images = torch.rand(2, 3, 32, 32)
    text = clip.prompt_embeddings(loaded)
    tokens = loaded.tokenizer(list(clip.PROMPTS), padding=True, return_tensors="pt")
    mean, std = torch.tensor(clip.CLIP_MEAN).view(3, 1, 1), torch.tensor(clip.CLIP_STD).view(3, 1, 1)
    with torch.inference_mode():
        theirs = loaded.model(**tokens, pixel_values=(images - mean) / std).logits_per_image
        ours = segment_logits(clip.clip_features(loaded.model, images).numpy()[None], text)[0]
    np.testing.assert_allclose(ours, theirs.numpy(), rtol=1e-4, atol=1e-4)


def test_local_folder_weights_have_a_sha256_identity(tmp_path):
    loaded = clip.load_clip("tiny", "random", 5)
    loaded.model.save_pretrained(tmp_path / "model")
    loaded.tokenizer.save_pretrained(tmp_path / "model")
    again = clip.load_clip("tiny", str(tmp_path / "model"), 0)
    assert again.weights.source == "sha256"
    images = torch.rand(1, 3, 32, 32)
    with torch.inference_mode():
        torch.testing.assert_close(
            clip.clip_features(again.model, images), clip.clip_features(loaded.model, images)
        )


def test_pretrained_offline_is_one_clear_line(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(InputError, match="cannot load the CLIP weights") as caught:
        clip.load_clip("no-such-owner/no-such-clip@main", "pretrained", 0)
    assert "\n" not in str(caught.value) and "--weights KIND=DIR" in str(caught.value)
    with pytest.raises(InputError, match="only with random weights"):
        clip.load_clip("tiny", "pretrained", 0)


def test_windows_of_a_long_video_decode_clap_audio_at_48_khz(tmp_path):
    from extractors.windows import extract_windows

    video = make_clip(tmp_path / "long.mp4", seconds=15.0, fps=8, size=(32, 24))
    options = NetworkOptions(
        weights=dict.fromkeys(TEACHER_KINDS, "random"), clip_model="tiny", clap_model="tiny"
    )
    networks = build_networks(TEACHER_KINDS, options, torch.device("cpu"))
    windows = extract_windows(video, networks)
    assert windows.window_starts == [0.0, 10.0]
    for kind in TEACHER_KINDS:
        assert windows.features[kind].shape == (2, *FEATURE_SHAPES[kind])
    segments = next(n for n in networks if n.kind == "clap_segments")
    with torch.inference_mode():  # the first window is the clip 'avvp extract' sees
        first = segments.forward(segments.prepare(load_audio(video, rate=clap.SAMPLE_RATE).waveform))
    np.testing.assert_allclose(windows.features["clap_segments"][0], first.numpy(), atol=1e-5)
