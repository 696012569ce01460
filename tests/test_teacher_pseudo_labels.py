"""VALOR's pseudo-label rule on hand-made similarities, ``avvp pseudo-labels`` end to end on extracted
teacher features, its agreement with dense labels, and the import of VALOR's released folders."""

from __future__ import annotations

import json

import numpy as np
import pytest
from extract_helpers import make_clip

from avvp.cli import main
from avvp.data.features import FeatureStore, TextEmbeddings
from avvp.data.labels import CLASS_INDEX, CLASSES, encode_classes, segments_to_events, write_event_rows
from avvp.data.pseudo_labels import PseudoLabels
from avvp.teachers.pseudo_labels import VALOR_THRESHOLDS, agreement, segment_logits, threshold_labels

CLIPS = ("aaaaaaaaaaa_0_10", "bbbbbbbbbbb_0_10", "ccccccccccc_0_10")


def write_weak(path, labels: dict[str, list[str]]) -> None:
    lines = ["filename\tevent_labels", *(f"{clip}\t{','.join(names)}" for clip, names in labels.items())]
    path.write_text("\n".join(lines) + "\n")


def test_rule_keeps_only_weak_labels_above_their_threshold():
    logits = np.zeros((1, 2, 25), np.float32)
    logits[0, 0, :3] = [21.0, 30.0, 18.0]  # Speech above 20, Car above 15 but not labelled, Cheering == 18
    logits[0, 1, 0] = 20.0  # exactly the threshold: VALOR's '>' leaves it out
    weak = np.zeros((1, 25), np.float32)
    weak[0, [0, 2]] = 1
    labels = threshold_labels(logits, VALOR_THRESHOLDS["clip"], weak)
    assert labels.dtype == np.float32
    assert labels[0, 0].nonzero()[0].tolist() == [0]
    assert labels[0, 1].sum() == 0


def test_logits_are_scaled_cosines():
    prompts = np.eye(25, 4, dtype=np.float32)  # class c's prompt is axis c (c < 4)
    text = TextEmbeddings(tuple(CLASSES), prompts, 100.0)
    segment = np.array([[[0.6, 0.8, 0.0, 0.0]]], np.float32)
    logits = segment_logits(segment, text)
    np.testing.assert_allclose(logits[0, 0, :3], [60.0, 80.0, 0.0], rtol=1e-6)
    assert logits.shape == (1, 1, 25)


def test_agreement_is_the_llp_segment_f1(tmp_path):
    dense = np.zeros((2, 10, 25), bool)
    dense[0, :5, CLASS_INDEX["Speech"]] = True
    dense[1, 3:, CLASS_INDEX["Dog"]] = True
    ids = list(CLIPS[:2])
    for name in ("audio", "visual"):
        write_event_rows(tmp_path / f"gt_{name}.csv", segments_to_events(ids, dense))
    write_weak(tmp_path / "val.csv", {ids[0]: ["Speech"], ids[1]: ["Dog"]})
    half = dense.copy()
    half[0, :, CLASS_INDEX["Speech"]] = False  # clip 0 predicts nothing: F1 0; clip 1 exact: F1 1
    scores = agreement(ids, dense.astype(np.float32), half.astype(np.float32), {"val": tmp_path / "val.csv"},
                       tmp_path / "gt_audio.csv", tmp_path / "gt_visual.csv")  # fmt: skip
    assert scores["val"]["segment"]["audio"] == pytest.approx(100.0)
    assert scores["val"]["segment"]["visual"] == pytest.approx(50.0)
    assert scores["val"]["videos"] == 2


@pytest.fixture(scope="module")
def teacher_store(tmp_path_factory):
    root = tmp_path_factory.mktemp("pl")
    videos = root / "videos"
    videos.mkdir()
    for clip in CLIPS:
        make_clip(videos / f"{clip}.mp4", seconds=10.0, fps=8, size=(32, 24))
    store = root / "teachers.h5"
    argv = ["extract", "--videos", str(videos), "--output", str(store), "--kinds", "clip,clap_segments"]
    argv += ["--weights", "random", "--clip-model", "tiny", "--clap-model", "tiny", "--device", "cpu"]
    assert main([*argv, "--no-progress"]) == 0
    annotations = root / "annotations"
    annotations.mkdir()
    write_weak(
        annotations / "AVVP_dataset_full.csv",
        {CLIPS[0]: ["Speech", "Dog"], CLIPS[1]: ["Car"], CLIPS[2]: ["Cat"]},
    )
    write_weak(annotations / "AVVP_val_pd.csv", {CLIPS[1]: ["Car"]})
    write_weak(annotations / "AVVP_test_pd.csv", {CLIPS[2]: ["Cat"]})
    dense = np.zeros((3, 10, 25), bool)
    dense[1, :, CLASS_INDEX["Car"]] = True
    dense[2, :4, CLASS_INDEX["Cat"]] = True
    for name in ("audio", "visual"):
        write_event_rows(annotations / f"AVVP_eval_{name}.csv", segments_to_events(list(CLIPS), dense))
    return store, annotations


def test_command_writes_valor_labels_with_the_teachers_identity(teacher_store, tmp_path):
    store, annotations = teacher_store
    weak = np.stack([encode_classes(["Speech", "Dog"]), encode_classes(["Car"]), encode_classes(["Cat"])])
    with FeatureStore(store) as features:
        logits = segment_logits(features.read("clip", list(CLIPS)), features.text_embeddings("clip"))
    threshold = float(np.median(logits[np.broadcast_to(weak[:, None, :] > 0, logits.shape)]))
    output, scores = tmp_path / "pl.h5", tmp_path / "agreement.json"
    argv = ["pseudo-labels", "--features", str(store), "--annotations-dir", str(annotations)]
    argv += ["--output", str(output), "--agreement", str(scores), "--audio-thresholds", "-100"]
    assert main([*argv, "--visual-thresholds", repr(threshold)]) == 0
    with PseudoLabels(output) as labels:
        audio, visual = labels.read(list(CLIPS))
        teacher = labels.teacher
    np.testing.assert_array_equal(visual, threshold_labels(logits, [threshold] * 25, weak))
    assert 0 < visual.sum() < 40  # the threshold keeps some of the 40 labelled segment-class cells
    assert visual[:, :, weak.sum(axis=0) == 0].sum() == 0
    # thresholds of -100 pass every segment, so audio labels are exactly the weak labels everywhere
    assert audio[0, :, CLASS_INDEX["Speech"]].all() and audio[0, :, CLASS_INDEX["Dog"]].all()
    assert audio[0].sum() == 20 and audio[1].sum() == 10
    assert teacher["visual"]["thresholds"] == [threshold] * 25
    assert teacher["audio"]["thresholds"] == [-100.0] * 25
    assert teacher["visual"]["extractor"]["weights"] == "random-init(seed=0)"
    assert teacher["visual"]["extractor"]["model"] == "tiny"
    splits = json.loads(scores.read_text())["splits"]
    assert splits["val"]["segment"]["audio"] == pytest.approx(100.0)  # Car in all 10 segments
    assert splits["test"]["segment"]["audio"] == pytest.approx(100 * 2 * 4 / (2 * 4 + 6))


def test_released_folders_import_into_the_same_format(tmp_path):
    visual_dir, audio_dir = tmp_path / "CLIP_labels", tmp_path / "CLAP_labels"
    visual_dir.mkdir()
    audio_dir.mkdir()
    rng = np.random.default_rng(0)
    released = {}
    for clip in CLIPS[:2]:
        released[clip] = (
            (rng.random((10, 25)) > 0.8).astype(np.int64),
            (rng.random((10, 25)) > 0.7).astype(np.int64),
        )
        np.save(visual_dir / f"{clip[:11]}.npy", released[clip][0])
        np.save(audio_dir / f"{clip[:11]}.npy", released[clip][1])
    np.save(visual_dir / f"{CLIPS[2][:11]}.npy", np.full((10, 25), 2))  # invalid values
    np.save(audio_dir / f"{CLIPS[2][:11]}.npy", np.zeros((10, 25)))
    labels_file = tmp_path / "full.csv"
    write_weak(labels_file, {clip: ["Speech"] for clip in CLIPS})
    output = tmp_path / "released.h5"
    argv = ["pseudo-labels", "--import-visual", str(visual_dir), "--import-audio", str(audio_dir)]
    assert main([*argv, "--labels", str(labels_file), "--output", str(output), "--no-progress"]) == 0
    with PseudoLabels(output) as labels:
        assert labels.video_ids == list(CLIPS[:2])
        audio, visual = labels.read(list(CLIPS[:2]))
        assert "released VALOR" in labels.teacher["visual"]["source"]
    for row, clip in enumerate(CLIPS[:2]):
        np.testing.assert_array_equal(visual[row], released[clip][0])
        np.testing.assert_array_equal(audio[row], released[clip][1])
    problems = (tmp_path / "released.h5.problems.tsv").read_text()
    assert "values other than 0 and 1" in problems


def test_import_features_reads_valor_feature_folders(tmp_path):
    folders = {"clip": (10, 768), "clap": (64, 768)}
    rng = np.random.default_rng(1)
    arrays = {}
    for kind, shape in folders.items():
        (tmp_path / kind).mkdir()
        arrays[kind] = rng.standard_normal(shape).astype(np.float32)
        np.save(tmp_path / kind / f"{CLIPS[0][:11]}.npy", arrays[kind])
    np.save(tmp_path / "clap" / f"{CLIPS[1][:11]}.npy", np.zeros((10, 768), np.float32))  # wrong shape
    labels_file = tmp_path / "full.csv"
    write_weak(labels_file, {clip: ["Speech"] for clip in CLIPS[:2]})
    output = tmp_path / "valor.h5"
    argv = ["import-features", "--clip", str(tmp_path / "clip"), "--clap", str(tmp_path / "clap")]
    assert main([*argv, "--clips", str(labels_file), "--output", str(output)]) == 0
    with FeatureStore(output) as store:
        for kind in folders:
            np.testing.assert_array_equal(store.read(kind, [CLIPS[0]])[0], arrays[kind])
            assert "VALOR" in store.attrs(kind)["weights"]
        assert store.video_ids("clap") == [CLIPS[0]]
    assert "shape (10, 768), expected (64, 768)" in (tmp_path / "valor.h5.problems.tsv").read_text()


def test_features_without_prompt_embeddings_are_refused(tmp_path):
    from avvp.data.features import FeatureStoreWriter

    store = tmp_path / "imported.h5"
    with FeatureStoreWriter(store) as writer:
        for kind, shape in (("clip", (10, 768)), ("clap_segments", (10, 512))):
            writer.add(kind, CLIPS[0], np.zeros(shape, np.float32))
    labels_file = tmp_path / "full.csv"
    write_weak(labels_file, {CLIPS[0]: ["Speech"]})
    argv = ["pseudo-labels", "--features", str(store), "--labels", str(labels_file)]
    assert main([*argv, "--output", str(tmp_path / "pl.h5")]) != 0
    assert not (tmp_path / "pl.h5").exists()
