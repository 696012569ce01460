"""A tiny end-to-end run of the default target, interrupted after one shard and resumed."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from workflow_helpers import fresh_checkout, snakemake

from avvp.data.pseudo_labels import PseudoLabels

TINY_CONFIG = """
demo: {num_train: 6, num_val: 2, num_test: 2, num_classes: 3, frame_size: 32, fps: 8}
features: {image_size: 16, clip_size: 16}
training: {epochs: 2}
noise_estimators: {jomold: {train: {epochs: 2}}}
experiments:
  jomold_dgm_msdu: {train: {epochs: 2}}
  valor: {train: {epochs: 2}}
  valor_plus_plus: {train: {epochs: 2}}
"""
TINY = ["--configfile", "config/config.yaml", "tiny.yaml"]

pytestmark = pytest.mark.skipif(
    shutil.which("avvp") is None, reason="the 'avvp' command is not installed (pip install -e .)"
)


def test_tiny_demo_runs_end_to_end_and_resumes_by_shard(tmp_path):
    checkout = fresh_checkout(tmp_path)
    (checkout / "tiny.yaml").write_text(TINY_CONFIG)
    first_shard = checkout / "data" / "demo" / "features" / "shards" / "000.h5"
    partial = snakemake(checkout, "--cores", "2", "data/demo/features/shards/000.h5", *TINY, timeout=300)
    assert partial.returncode == 0, partial.stderr[-4000:]
    stamp = first_shard.stat().st_mtime_ns

    done = snakemake(checkout, "--cores", "2", *TINY, timeout=400)
    assert done.returncode == 0, done.stderr[-4000:]
    assert first_shard.stat().st_mtime_ns == stamp
    assert "wildcards: shard=000" not in done.stderr + done.stdout
    assert "wildcards: shard=001" in done.stderr + done.stdout

    results = checkout / "results" / "demo"
    for name in (
        "han",
        "a_cross_v_self",
        "base_adv_skip_gcaa",
        "pretrain_e2e_uni",
        "jomold_dgm_msdu",
        "ma",
        "valor",
        "valor_plus_plus",
        "weak_baseline",
    ):
        metrics = json.loads((results / "metrics" / f"{name}.json").read_text())
        assert metrics["videos"] == 2
        assert set(metrics["segment"]) == {"audio", "visual", "audio_visual", "type", "event"}
    pretraining = [json.loads(line) for line in (results / "pretraining" / "uni" / "history.jsonl").open()]
    assert len(pretraining) == 10 and pretraining[-1]["loss"] < pretraining[0]["loss"]
    e2e = (results / "train" / "pretrain_e2e_uni.yaml").read_text()
    assert "pretrained_encoder: results/demo/pretraining/uni/encoder.pt" in e2e
    history = [json.loads(line) for line in (results / "train" / "jomold_dgm_msdu" / "history.jsonl").open()]
    assert all(
        {"omega", "mu_audio", "mu_visual", "dropped_audio", "L_nce", "L_ms"} <= set(r) for r in history
    )
    assert (results / "denoising" / "jomold" / "noise_ratios.npz").is_file()
    valor = [json.loads(line) for line in (results / "train" / "valor" / "history.jsonl").open()]
    assert len(valor) == 2 and all(r["L_pseudo_a"] > 0 and r["grad_norm"] > 0 for r in valor)
    assert (
        "pseudo_labels: results/demo/teachers/valor/pseudo_labels.h5"
        in (results / "train" / "valor.yaml").read_text()
    )
    plus_plus = (results / "train" / "valor_plus_plus.yaml").read_text()  # CLIP and CLAP: the teacher's store
    assert "num_layers: 4" in plus_plus and "audio: clap" in plus_plus and "visual: clip" in plus_plus
    refined = json.loads((results / "refinement" / "ma" / "refined_labels.json").read_text())
    assert refined["clips"] == 6 and refined["checkpoint"] == "results/demo/refinement/ma/best.pt"
    assert (
        "refined_labels: results/demo/refinement/ma/refined_labels.npz"
        in (results / "train" / "ma.yaml").read_text()
    )
    decision = json.loads((results / "predict" / "jomold_dgm_msdu" / "decision.json").read_text())
    assert decision["rule"] == "modality"
    markdown = (results / "report" / "report.md").read_text()
    assert "## AVG pretraining" in markdown
    assert "## Label denoising" in markdown and "## Gradient modulation" in markdown
    assert "## Label refinement" in markdown and "| class | ma: labels | ma: audio removed |" in markdown
    assert "**jomold_dgm_msdu** (this run; decision rule modality)" in markdown
    assert (
        "**valor** (this run; decision rule fused; pseudo-labels of a random-init teacher: meaningless)"
        in markdown
    )
    assert "A_cross+V_cross (HAN) | segment | 60.1 | 52.9" in markdown
    assert "10 of 10 clips are available; **0 missing**" in markdown
    assert "| test | 2 | 2 | 0 |" in markdown
    assert "random-init" in markdown
    assert (
        "## Teachers' pseudo-labels" in markdown
        and "| valor | val | 2 | random-init(seed=0) (tiny)" in markdown
    )
    with PseudoLabels(results / "teachers" / "valor" / "pseudo_labels.h5") as labels:
        assert len(labels.video_ids) == 10 and labels.teacher["visual"]["thresholds"] == [-0.55] * 25
    assert (results / "report" / "report.html").read_text().count("data:image/png;base64,") >= 2
    assert (results / "benchmarks" / "extract" / "001.tsv").is_file()
    assert (checkout / "logs" / "demo" / "train" / "han.log").stat().st_size > 0

    # the parse target: the demo's test clips through the HAN checkpoint give the predict stage's events
    parsed = snakemake(checkout, "--cores", "2", "parse", *TINY, timeout=300)
    assert parsed.returncode == 0, parsed.stderr[-4000:]
    clips = [Path(line).stem for line in (results / "parse" / "videos.txt").read_text().split()]
    assert len(clips) == 2
    for modality in ("audio", "visual"):
        parse_rows = (results / "parse" / f"pred_{modality}.csv").read_text().splitlines()
        predict_rows = (results / "predict" / "han" / f"pred_{modality}.csv").read_text().splitlines()
        assert parse_rows[1:] == [row for row in predict_rows[1:] if row.split("\t")[0] in clips]
    assert (results / "parse" / "parts" / "0" / f"{clips[0]}.html").is_file()
