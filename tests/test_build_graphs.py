"""Audio-visual grounding ground truth (paper 002, Algorithm 1): the core, the graph file and the CLI."""

from __future__ import annotations

import logging
import math

import numpy as np
import pytest

from avvp.cli import main
from avvp.data.features import FeatureStoreWriter
from avvp.errors import InputError
from avvp.pretraining.graphs import (
    GraphStore,
    GraphStoreError,
    ThresholdRule,
    build_graph_file,
    component_counts,
    cosine_similarities,
    graph_summary,
    grounding_graphs,
)

IDENTITY = {
    "resnet152": {"extractor": "resnet152", "weights": "torchvision:ResNet152_Weights.IMAGENET1K_V1"},
    "vggish": {"extractor": "vggish", "weights": "sha256:0123abcd"},
}


def clip_id(i: int) -> str:
    """An LLP-style filename: 11 characters, then ``_start_end``."""
    return f"clip{i:07d}_0_10"


def components_to_graph(groups: list[list[int]]) -> np.ndarray:
    """The expected GT (10, 10) of snippets partitioned into ``groups`` (unlisted snippets alone)."""
    graph = np.eye(10, dtype=bool)
    for group in groups:
        graph[np.ix_(group, group)] = True
    return graph


def one_hot(rows: int = 10, dim: int = 16) -> np.ndarray:
    """Mutually orthogonal snippet embeddings (1, rows, dim): no pair is similar."""
    return np.eye(rows, dim)[None]


# --- an independent implementation: loops over pairs, union-find ------------------------------------------


def reference_cosine(a: np.ndarray, b: np.ndarray) -> float:
    """Cosine similarity of two vectors; 0 when either is zero."""
    norm_a, norm_b = math.sqrt(float(a @ a)), math.sqrt(float(b @ b))
    return 0.0 if norm_a == 0 or norm_b == 0 else float(a @ b) / (norm_a * norm_b)


def reference_graph(visual: np.ndarray, audio: np.ndarray, vt: float, at: float) -> np.ndarray:
    """Algorithm 1 for one clip, written plainly: snippet embeddings (10, D) -> GT (10, 10)."""
    parent = list(range(10))

    def find(u: int) -> int:
        while parent[u] != u:
            u = parent[u]
        return u

    for j in range(10):
        for k in range(j + 1, 10):
            if reference_cosine(visual[j], visual[k]) >= vt or reference_cosine(audio[j], audio[k]) >= at:
                parent[find(j)] = find(k)
    return np.array([[find(u) == find(v) for v in range(10)] for u in range(10)])


def reference_snippets(frames: np.ndarray) -> np.ndarray:
    """Mean of each second's 8 frames, one second at a time: (80, D) -> (10, D)."""
    return np.stack([frames[8 * j : 8 * j + 8].astype(np.float64).mean(axis=0) for j in range(10)])


def clustered(rng: np.random.Generator, clips: int, dim: int, noise: float, events=None) -> np.ndarray:
    """Snippet embeddings (clips, 10, dim) around 3 random prototypes per clip, so links are common.

    ``events`` (clips, 10) chooses each snippet's prototype (random when None).
    """
    prototypes = rng.standard_normal((clips, 3, dim))
    events = rng.integers(0, 3, size=(clips, 10)) if events is None else events
    return np.take_along_axis(prototypes, events[..., None], axis=1) + noise * rng.standard_normal(
        (clips, 10, dim)
    )


# --- Algorithm 1 on hand-made cases ------------------------------------------------------------------------


def test_chain_is_transitive():
    visual = one_hot()
    visual[0, 1], visual[0, 2] = visual[0, 0] + visual[0, 1], visual[0, 1]  # cos 0.707, 0.707; 0 for (0, 2)
    graphs = grounding_graphs(visual, one_hot(dim=12), visual_threshold=0.7, audio_threshold=0.5)
    assert np.array_equal(graphs[0], components_to_graph([[0, 1, 2]]))


def test_a_link_from_either_modality_suffices():
    visual, audio = one_hot(), one_hot(dim=12)
    visual[0, 1] = visual[0, 0]
    audio[0, 3] = audio[0, 2]
    graphs = grounding_graphs(visual, audio, visual_threshold=0.9, audio_threshold=0.9)
    assert np.array_equal(graphs[0], components_to_graph([[0, 1], [2, 3]]))


def test_similarity_exactly_on_the_threshold_links():
    visual = one_hot()
    visual[0, 1, :2] = [3.0, 4.0]  # cos with snippet 0 = 3/5 = 0.6 exactly
    audio = one_hot(dim=12)
    assert cosine_similarities(visual)[0, 0, 1] == 0.6
    on = grounding_graphs(visual, audio, visual_threshold=0.6, audio_threshold=0.5)
    above = grounding_graphs(visual, audio, visual_threshold=np.nextafter(0.6, 1.0), audio_threshold=0.5)
    assert np.array_equal(on[0], components_to_graph([[0, 1]]))
    assert np.array_equal(above[0], np.eye(10, dtype=bool))


def test_no_links_gives_the_identity():
    graphs = grounding_graphs(one_hot(), one_hot(dim=12), visual_threshold=0.5, audio_threshold=0.5)
    assert np.array_equal(graphs[0], np.eye(10, dtype=bool))
    assert graph_summary(graphs) == {
        "clips": 1,
        "components_mean": 10.0,
        "components_histogram": [0] * 9 + [1],
        "positive_pair_share": 0.0,
    }


def test_all_similar_gives_all_ones():
    visual = np.linspace(1, 2, 10)[None, :, None] * np.ones((1, 10, 5))  # one direction, other scales
    graphs = grounding_graphs(visual, one_hot(dim=12), visual_threshold=0.99, audio_threshold=0.99)
    assert graphs.all()
    assert component_counts(graphs).tolist() == [1]


def test_zero_vectors_have_similarity_zero():
    visual = one_hot()
    visual[0, 4] = 0.0
    similarities = cosine_similarities(visual)
    assert np.isfinite(similarities).all() and not similarities[0, 4].any()


def test_component_counts_and_summary():
    graphs = np.stack(
        [components_to_graph([[0, 1, 2]]), components_to_graph([list(range(10))]), np.eye(10, dtype=bool)]
    )
    assert component_counts(graphs).tolist() == [8, 1, 10]
    summary = graph_summary(graphs)
    assert summary["components_histogram"] == [1, 0, 0, 0, 0, 0, 0, 1, 0, 1]
    assert summary["positive_pair_share"] == pytest.approx((6 + 90) / 270)


@pytest.mark.parametrize("vt, at", [(0.5, 0.5), (0.8, 0.3), (0.95, 0.95), (0.0, 0.99), (-0.2, 1.0)])
def test_matches_the_plain_implementation(vt, at):
    rng = np.random.default_rng(7)
    visual, audio = clustered(rng, 40, 6, 0.6), clustered(rng, 40, 4, 0.6)
    visual[3, 5] = 0.0  # zero vectors: similarity 0, so a threshold <= 0 links them
    audio[4, 2] = 0.0
    graphs = grounding_graphs(visual, audio, vt, at)
    for clip in range(40):
        assert np.array_equal(graphs[clip], reference_graph(visual[clip], audio[clip], vt, at)), clip


# --- the command and the graph file ------------------------------------------------------------------------


def write_store(path, rng, visual_ids, audio_ids, identity=IDENTITY):
    """A store of ResNet152 (80, 2048) features for ``visual_ids`` and VGGish (10, 128) for ``audio_ids``.

    Each clip's seconds show one of 3 events (the same in both modalities), plus noise.
    """
    events = {vid: rng.integers(0, 3, size=(1, 10)) for vid in dict.fromkeys([*visual_ids, *audio_ids])}
    frames, sounds = {}, {}
    with FeatureStoreWriter(path) as store:
        for kind in ("resnet152", "vggish"):
            store.set_attrs(kind, identity[kind])
        for vid in visual_ids:
            seconds = clustered(rng, 1, 2048, 0.8, events[vid])[0]
            frames[vid] = (np.repeat(seconds, 8, axis=0) + rng.standard_normal((80, 2048))).astype(np.float32)
            store.add("resnet152", vid, frames[vid])
        for vid in audio_ids:
            sounds[vid] = clustered(rng, 1, 128, 0.5, events[vid])[0].astype(np.float32)
            store.add("vggish", vid, sounds[vid])
    return frames, sounds


def build(tmp_path, *options):
    """Run ``avvp build-graphs`` on ``tmp_path/features.h5`` writing ``tmp_path/graphs.h5``; the exit code."""
    argv = [
        "build-graphs",
        "--features",
        str(tmp_path / "features.h5"),
        "--output",
        str(tmp_path / "graphs.h5"),
    ]
    return main([*argv, *options])


def write_split(path, video_ids):
    path.write_text("filename\tevent_labels\n" + "".join(f"{vid}\tDog\n" for vid in video_ids))
    return str(path)


def test_cli_matches_the_plain_implementation_and_round_trips(tmp_path):
    ids = [clip_id(i) for i in range(6)]
    frames, sounds = write_store(tmp_path / "features.h5", np.random.default_rng(1), ids, ids)
    assert build(tmp_path, "--visual-threshold", "0.5", "--audio-threshold", "0.6") == 0
    store = GraphStore(tmp_path / "graphs.h5")
    assert store.video_ids == ids
    requested = [ids[4], ids[0], ids[5], ids[4]]
    graphs = store.read(requested)
    assert graphs.shape == (4, 10, 10) and graphs.dtype == bool
    for vid, graph in zip(requested, graphs, strict=True):
        assert np.array_equal(graph, reference_graph(reference_snippets(frames[vid]), sounds[vid], 0.5, 0.6))
    attrs = store.attrs
    assert (attrs["visual_threshold"], attrs["visual_quantile"]) == (0.5, None)
    assert (attrs["audio_threshold"], attrs["audio_quantile"]) == (0.6, None)
    assert attrs["source"] == str(tmp_path / "features.h5")
    assert attrs["source_features"] == IDENTITY
    assert (attrs["clips"], attrs["clips_skipped"]) == (6, 0)
    assert (
        attrs["components_histogram"]
        == np.bincount(component_counts(store.read(ids)), minlength=11)[1:].tolist()
    )
    assert 0 < attrs["positive_pair_share"] < 1  # the clustered features give some links, not all
    assert store.read([]).shape == (0, 10, 10)


def test_chunked_reading_gives_the_same_graphs(tmp_path):
    ids = [clip_id(i) for i in range(7)]
    write_store(tmp_path / "features.h5", np.random.default_rng(8), ids, ids[::-1])  # other audio row order
    rules = ThresholdRule("visual", quantile=0.7), ThresholdRule("audio", 0.6)
    whole = build_graph_file(tmp_path / "features.h5", tmp_path / "whole.h5", *rules)
    chunked = build_graph_file(tmp_path / "features.h5", tmp_path / "chunked.h5", *rules, chunk_clips=3)
    assert set(whole["seconds"]) == {"read", "compute", "write"}
    assert whole["visual_threshold"] == chunked["visual_threshold"]
    assert np.array_equal(
        GraphStore(tmp_path / "whole.h5").read(ids), GraphStore(tmp_path / "chunked.h5").read(ids)
    )


def test_graph_file_reader_names_missing_clips(tmp_path):
    ids = [clip_id(i) for i in range(2)]
    write_store(tmp_path / "features.h5", np.random.default_rng(2), ids, ids)
    assert build(tmp_path, "--visual-threshold", "0.5", "--audio-threshold", "0.5") == 0
    with pytest.raises(
        GraphStoreError, match=r"graphs\.h5: 1 clip\(s\) have no grounding graph: clip0000009_0_10"
    ):
        GraphStore(tmp_path / "graphs.h5").read([ids[0], clip_id(9)])
    with pytest.raises(GraphStoreError, match="not a grounding graph file"):
        GraphStore(tmp_path / "features.h5")
    with pytest.raises(GraphStoreError, match="not found"):
        GraphStore(tmp_path / "absent.h5")


def test_clips_lacking_a_kind_are_listed_and_skipped(tmp_path, caplog):
    visual_ids = [clip_id(i) for i in range(6)]
    audio_ids = [clip_id(i) for i in (0, 1, 2, 3, 6)]
    write_store(tmp_path / "features.h5", np.random.default_rng(3), visual_ids, audio_ids)
    with caplog.at_level(logging.WARNING):
        assert build(tmp_path, "--visual-threshold", "0.5", "--audio-threshold", "0.5") == 0
    warning = caplog.text
    assert "skipping 3 of 7 clip(s)" in warning
    assert f"1 without resnet152 ({clip_id(6)})" in warning
    assert f"2 without vggish ({clip_id(4)}, {clip_id(5)})" in warning
    store = GraphStore(tmp_path / "graphs.h5")
    assert store.video_ids == visual_ids[:4]
    assert (store.attrs["clips"], store.attrs["clips_skipped"]) == (4, 3)

    caplog.clear()
    split = write_split(tmp_path / "split.csv", [clip_id(i) for i in (3, 0, 4, 7)])
    with caplog.at_level(logging.WARNING):
        assert build(tmp_path, "--visual-threshold", "0.5", "--audio-threshold", "0.5", "--clips", split) == 0
    assert "skipping 2 of 4 clip(s)" in caplog.text and clip_id(7) in caplog.text
    store = GraphStore(tmp_path / "graphs.h5")
    assert store.video_ids == [clip_id(0), clip_id(3)]  # ResNet152 row order
    assert store.attrs["clips_skipped"] == 2


def test_several_split_files_are_joined(tmp_path):
    ids = [clip_id(i) for i in range(5)]
    write_store(tmp_path / "features.h5", np.random.default_rng(4), ids, ids)
    first = write_split(tmp_path / "a.csv", ids[:2])
    second = write_split(tmp_path / "b.csv", ids[1:3])
    assert (
        build(tmp_path, "--visual-threshold", "0.5", "--audio-threshold", "0.5", "--clips", first, second)
        == 0
    )
    store = GraphStore(tmp_path / "graphs.h5")
    assert store.video_ids == ids[:3] and store.attrs["clips_skipped"] == 0


def test_quantile_thresholds_are_those_of_the_within_clip_pairs(tmp_path):
    ids = [clip_id(i) for i in range(7)]
    frames, sounds = write_store(tmp_path / "features.h5", np.random.default_rng(5), ids, [*ids, clip_id(8)])
    split = write_split(tmp_path / "split.csv", ids[1:])
    assert build(tmp_path, "--visual-quantile", "0.8", "--audio-quantile", "0.35", "--clips", split) == 0
    pairs = [(j, k) for j in range(10) for k in range(j + 1, 10)]
    visual = [reference_cosine(*reference_snippets(frames[v])[[j, k]]) for v in ids[1:] for j, k in pairs]
    audio = [reference_cosine(*sounds[v][[j, k]].astype(np.float64)) for v in ids[1:] for j, k in pairs]
    attrs = GraphStore(tmp_path / "graphs.h5").attrs
    assert attrs["visual_quantile"] == 0.8 and attrs["audio_quantile"] == 0.35
    assert attrs["visual_threshold"] == pytest.approx(np.quantile(visual, 0.8), rel=1e-12, abs=1e-15)
    assert attrs["audio_threshold"] == pytest.approx(np.quantile(audio, 0.35), rel=1e-12, abs=1e-15)


def test_threshold_rule_needs_exactly_one_of_value_and_quantile():
    with pytest.raises(InputError, match="either a visual threshold or a visual quantile"):
        ThresholdRule("visual", 0.5, 0.5).check()


def test_help_explains_the_graphs(capsys):
    with pytest.raises(SystemExit):
        main(["build-graphs", "--help"])
    assert "connected component" in capsys.readouterr().out


def test_graphs_of_imported_released_features_match_the_plain_implementation(tmp_path):
    # LLP's released layout: one .npy per clip and kind, named by YouTube id (res152 80x2048 per clip)
    ids = [f"{chr(97 + i) * 11}_{i}_{i + 10}" for i in range(4)]
    rng = np.random.default_rng(3)
    frames = {vid: np.repeat(clustered(rng, 1, 2048, 0.3)[0], 8, axis=0).astype(np.float32) for vid in ids}
    sounds = {vid: clustered(rng, 1, 128, 0.3)[0].astype(np.float32) for vid in ids}
    for folder, arrays in (("res152", frames), ("vggish", sounds)):
        (tmp_path / folder).mkdir()
        for vid, array in arrays.items():
            np.save(tmp_path / folder / f"{vid[:11]}.npy", array)
    (tmp_path / "r2plus1d").mkdir()
    for vid in ids:
        np.save(tmp_path / "r2plus1d" / f"{vid[:11]}.npy", rng.standard_normal((10, 512)).astype(np.float32))
    labels = write_split(tmp_path / "clips.csv", ids)
    folders = [
        arg for name in ("vggish", "res152", "r2plus1d") for arg in (f"--{name}", str(tmp_path / name))
    ]
    assert (
        main(["import-features", "--clips", labels, "--output", str(tmp_path / "features.h5"), *folders]) == 0
    )
    assert build(tmp_path, "--visual-threshold", "0.7", "--audio-threshold", "0.99") == 0
    graphs = GraphStore(tmp_path / "graphs.h5").read(ids)
    for vid, graph in zip(ids, graphs, strict=True):
        expected = reference_graph(reference_snippets(frames[vid]), sounds[vid].astype(np.float64), 0.7, 0.99)
        assert np.array_equal(graph, expected)
    assert 0 < graphs.mean() < 1
