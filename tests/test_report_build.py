"""The run report: scores beside the paper's numbers, figures, coverage and weights identity."""

from __future__ import annotations

import json

from workflow_helpers import REPO, write_manifest_with_missing, write_run, write_store

from avvp.cli import main

PAPER_HAN_SEGMENT = "60.1 | 52.9 | 48.9 | 54.0 | 55.4"
PAPER_ACROSS_VSELF_EVENT = "51.9 | 51.2 | 44.3 | 49.1 | 48.9"


def _report(tmp_path, extra=()):
    results = tmp_path / "results"
    write_run(results, ["han", "a_cross_v_self"])
    write_store(tmp_path / "features.h5", ["aaaaaaaaaaa_0_10", "bbbbbbbbbbb_0_10"])
    write_manifest_with_missing(
        tmp_path / "000.tsv", ["aaaaaaaaaaa_0_10", "bbbbbbbbbbb_0_10"], ["ccccccccccc_0_10"]
    )
    train = {"total": 3, "available": 2, "missing": 1, "missing_clips": ["ccccccccccc_0_10"]}
    (tmp_path / "coverage.json").write_text(json.dumps({"splits": {"train": train}}))
    argv = [
        "report", "--run-name", "unit", "--results-dir", str(results),
        "--experiment", "han", "A_cross+V_cross (HAN)", "--experiment", "a_cross_v_self", "A_cross+V_self",
        "--baseline", str(results / "metrics" / "weak_baseline.json"), "--features", str(tmp_path / "features.h5"),
        "--manifest", str(tmp_path / "000.tsv"), "--coverage", str(tmp_path / "coverage.json"), "--reference", str(REPO / "resources" / "paper_results.csv"),
        "--output-md", str(tmp_path / "out" / "report.md"), "--output-html", str(tmp_path / "out" / "report.html"),
        *extra,
    ]  # fmt: skip
    return main(argv), results


def test_report_shows_runs_beside_paper_rows_and_coverage(tmp_path):
    code, results = _report(tmp_path)
    assert code == 0
    markdown = (tmp_path / "out" / "report.md").read_text()
    assert PAPER_HAN_SEGMENT in markdown
    assert PAPER_ACROSS_VSELF_EVENT in markdown
    han = json.loads((results / "metrics" / "han.json").read_text())
    assert (
        f"| **han** (this run) | segment | {han['segment']['audio']:.1f} | {han['segment']['visual']:.1f}"
        in markdown
    )
    baseline = json.loads((results / "metrics" / "weak_baseline.json").read_text())
    audio_gain = han["segment"]["audio"] - baseline["segment"]["audio"]
    assert f"{audio_gain:+.1f}" in markdown
    assert "2 of 3 clips are available; **1 missing**" in markdown
    assert "ccccccccccc_0_10" in markdown
    assert "| train | 3 | 2 | 1 |" in markdown
    assert "random-init(seed=0)" in markdown
    for name in ("per_class_f1.png", "attention.png", "training_curves.png"):
        figure = tmp_path / "out" / "figures" / name
        assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert f"figures/{name}" in markdown
    html = (tmp_path / "out" / "report.html").read_text()
    assert "<table>" in html and html.count("data:image/png;base64,") == 3
    assert "figures/" not in html


def test_report_rejects_incomplete_metrics(tmp_path, capsys):
    results = tmp_path / "results"
    write_run(results, ["han", "a_cross_v_self"])
    broken = results / "metrics" / "han.json"
    metrics = json.loads(broken.read_text())
    del metrics["event"]["visual"]
    broken.write_text(json.dumps(metrics))
    code, _ = _report(tmp_path / "again")
    assert code == 0
    argv_code = main(
        ["report", "--run-name", "x", "--results-dir", str(results), "--experiment", "han", "HAN",
         "--features", str(tmp_path / "again" / "features.h5"), "--reference", str(REPO / "resources" / "paper_results.csv"),
         "--output-md", str(tmp_path / "r.md"), "--output-html", str(tmp_path / "r.html")]
    )  # fmt: skip
    assert argv_code == 2
    assert f"{broken}: metrics lack event-level visual" in capsys.readouterr().err
    assert not (tmp_path / "r.md").exists()
