"""The run report: scores beside the papers' numbers, figures, coverage and weights identity."""

from __future__ import annotations

import json
import re
import struct

import numpy as np
from workflow_helpers import REPO, synthetic_metrics, write_manifest_with_missing, write_run, write_store

from avvp.cli import main
from avvp.data.labels import CLASSES
from avvp.data.pseudo_labels import write_pseudo_labels
from avvp.pretraining.graphs import graph_summary, write_graph_file
from avvp.reports import figures
from avvp.training.noise_ratios import NoiseRatios, write_noise_ratios
from avvp.training.refined_labels import RefinedLabels, write_refined_labels

REFERENCE = REPO / "resources" / "paper_results.csv"
TWO_EXPERIMENTS = [("han", "A_cross+V_cross (HAN)"), ("a_cross_v_self", "A_cross+V_self")]
PAPER_HAN_SEGMENT = "60.1 | 52.9 | 48.9 | 54.0 | 55.4"
PAPER_ACROSS_VSELF_EVENT = "51.9 | 51.2 | 44.3 | 49.1 | 48.9"
SCORES_HEADER = "method"
DISCRIMINATOR_HEADER = "experiment | first epoch"
MODULATION_HEADER = "experiment | first epoch | last epoch | selected epoch (best validation)"
MAIN_FIGURES = ["attention.png", "per_class_f1.png", "training_curves.png"]
AVG_FIGURES = ["graph_components.png", "pretraining_loss.png"]


def _inputs(tmp_path, names):
    """Write a run of experiments ``names`` (metrics, histories, attention), a store, a manifest, coverage."""
    results = tmp_path / "results"
    write_run(results, names)
    write_store(tmp_path / "features.h5", ["aaaaaaaaaaa_0_10", "bbbbbbbbbbb_0_10"])
    write_manifest_with_missing(
        tmp_path / "000.tsv", ["aaaaaaaaaaa_0_10", "bbbbbbbbbbb_0_10"], ["ccccccccccc_0_10"]
    )
    train = {"total": 3, "available": 2, "missing": 1, "missing_clips": ["ccccccccccc_0_10"]}
    (tmp_path / "coverage.json").write_text(json.dumps({"splits": {"train": train}}))
    return results


def _run(tmp_path, experiments, reference=REFERENCE, extra=()):
    """Run 'avvp report' on the inputs of :func:`_inputs` with ``--experiment NAME METHOD`` pairs."""
    results = tmp_path / "results"
    argv = [
        "report", "--run-name", "unit", "--results-dir", str(results),
        *(arg for pair in experiments for arg in ("--experiment", *pair)),
        "--baseline", str(results / "metrics" / "weak_baseline.json"), "--features", str(tmp_path / "features.h5"),
        "--manifest", str(tmp_path / "000.tsv"), "--coverage", str(tmp_path / "coverage.json"), "--reference", str(reference),
        "--output-md", str(tmp_path / "out" / "report.md"), "--output-html", str(tmp_path / "out" / "report.html"),
        *extra,
    ]  # fmt: skip
    return main(argv)


def _report(tmp_path, experiments=TWO_EXPERIMENTS, reference=REFERENCE, extra=()):
    results = _inputs(tmp_path, list(dict.fromkeys(name for name, _ in experiments)))
    return _run(tmp_path, experiments, reference, extra), results


def _table(markdown, header_start):
    """Cells of each body row of the Markdown table whose header starts with ``| header_start``."""
    lines = markdown.splitlines()
    start = next((i for i, line in enumerate(lines) if line.startswith(f"| {header_start}")), None)
    if start is None:
        return None
    rows = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        rows.append(line.strip("| ").split(" | "))
    return rows


def _png_width(path):
    return struct.unpack(">I", path.read_bytes()[16:20])[0]


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
    assert "AVG pretraining" not in markdown and "grounding" not in markdown
    assert sorted(p.name for p in (tmp_path / "out" / "figures").iterdir()) == MAIN_FIGURES
    for name in MAIN_FIGURES:
        figure = tmp_path / "out" / "figures" / name
        assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert f"figures/{name}" in markdown
    html = (tmp_path / "out" / "report.html").read_text()
    assert "<table>" in html and html.count("data:image/png;base64,") == 3
    assert "figures/" not in html


def test_each_experiment_is_followed_by_every_row_of_its_methods_across_papers(tmp_path):
    experiments = [
        ("han", "A_cross+V_cross (HAN)"), ("han", "HAN LS-V"), ("han", "HAN"), ("a_cross_v_self", "A_cross+V_self"),
    ]  # fmt: skip
    code, _ = _report(tmp_path, experiments)
    assert code == 0
    markdown = (tmp_path / "out" / "report.md").read_text()
    labels = [(row[0], row[1]) for row in _table(markdown, SCORES_HEADER)]
    han_rows = [
        "paper 000 table 1: A_cross+V_cross (HAN)",
        "paper 000 table 2: HAN LS-V",
        "paper 002 table 1-2: HAN",
        "paper 004 table I: HAN",
    ]
    expected = [
        *(("**han** (this run)", level) for level in ("segment", "event")),
        *((label, level) for label in han_rows for level in ("segment", "event")),
        *(("**a_cross_v_self** (this run)", level) for level in ("segment", "event")),
        *(("paper 000 table 1: A_cross+V_self", level) for level in ("segment", "event")),
        *(("weak-label baseline", level) for level in ("segment", "event")),
    ]
    assert labels == expected
    assert "paper 002 table 1-2: HAN | segment | 60.1 | 52.9" in markdown
    assert "(LLP test set; papers 000, 002, 004)" in markdown


def test_paper_filter_keeps_the_rows_of_the_papers_given(tmp_path):
    experiments = [("han", "A_cross+V_cross (HAN)"), ("han", "HAN")]
    code, _ = _report(tmp_path, experiments, extra=["--paper", "002"])
    assert code == 0
    markdown = (tmp_path / "out" / "report.md").read_text()
    labels = [row[0] for row in _table(markdown, SCORES_HEADER) if row[0].startswith("paper")]
    assert labels == ["paper 002 table 1-2: HAN"] * 2
    assert "(LLP test set; paper 002; restricted to paper(s) 002)" in markdown


def test_unknown_method_or_paper_is_an_error_naming_it(tmp_path, capsys):
    code, _ = _report(tmp_path, [("han", "A_cross+V_cross (HAN)"), ("han", "han ls-v")])
    assert code == 2
    err = capsys.readouterr().err
    assert f"experiment 'han': paper method 'han ls-v' is not a method of {REFERENCE}" in err
    assert "close names: 'HAN LS-V'" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()
    assert _run(tmp_path, [("han", "HAN")], extra=["--paper", "005"]) == 2
    assert "paper '005' has no row" in capsys.readouterr().err


def test_hostile_names_stay_text_in_markdown_and_html(tmp_path):
    hostile_method = "<b>bold</b>|*x* [a](javascript:alert(1))"
    reference = tmp_path / "reference.csv"
    rows = [f'000,9,"{hostile_method}",{level},1.0,2.0,3.0,4.0,5.0' for level in ("segment", "event")]
    reference.write_text(REFERENCE.read_text() + "\n".join(rows) + "\n")
    script, piped = "<img src=x onerror=alert(1)>", "a|b_\\|*c*"
    code, _ = _report(tmp_path, [(script, hostile_method), (piped, "HAN")], reference)
    assert code == 0
    html = (tmp_path / "out" / "report.html").read_text()
    assert "<img src=x" not in html and "<b>" not in html and 'href="javascript' not in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
    assert "<td>paper 000 table 9: &lt;b&gt;bold&lt;/b&gt;|*x* [a](javascript:alert(1))</td>" in html
    assert "<td><strong>a|b_\\|*c*</strong> (this run)</td>" in html
    markdown = (tmp_path / "out" / "report.md").read_text()
    assert html.count("<table>") == markdown.count("\n|---|")  # every Markdown table stayed a table
    for table in re.findall(r"<table>.*?</table>", html, flags=re.S):
        widths = {
            len(re.findall(r"<t[hd][ >]", row)) for row in re.findall(r"<tr>.*?</tr>", table, flags=re.S)
        }
        assert len(widths) == 1, table


def _add_discriminator_accuracy(train_dir, accuracy, best_epoch):
    history = [json.loads(line) for line in (train_dir / "history.jsonl").read_text().splitlines()]
    for record, value in zip(history, accuracy, strict=True):
        record["modality_discriminator_accuracy"] = value
    (train_dir / "history.jsonl").write_text("".join(json.dumps(r) + "\n" for r in history))
    (train_dir / "val_metrics.json").write_text(json.dumps({"epoch": best_epoch}))


def test_discriminator_accuracy_is_shown_only_for_experiments_that_record_it(tmp_path):
    plain, adversarial = tmp_path / "plain", tmp_path / "adversarial"
    assert _report(plain)[0] == 0
    markdown = (plain / "out" / "report.md").read_text()
    assert _table(markdown, DISCRIMINATOR_HEADER) is None and "discriminator" not in markdown

    results = _inputs(adversarial, ["han", "a_cross_v_self"])
    _add_discriminator_accuracy(results / "train" / "a_cross_v_self", [0.9, 0.7, 0.55], best_epoch=2)
    assert _run(adversarial, TWO_EXPERIMENTS) == 0
    markdown = (adversarial / "out" / "report.md").read_text()
    assert _table(markdown, DISCRIMINATOR_HEADER) == [
        ["a_cross_v_self", "0.900 (epoch 1)", "0.550 (epoch 3)", "0.700 (epoch 2)"]
    ]
    assert "0.5 means it cannot tell the two modalities apart" in markdown
    curves = "out/figures/training_curves.png"
    assert _png_width(adversarial / curves) > 1.3 * _png_width(plain / curves)  # a third panel


def test_discriminator_accuracy_outside_0_1_is_an_error(tmp_path, capsys):
    results = _inputs(tmp_path, ["han"])
    _add_discriminator_accuracy(results / "train" / "han", [0.5, 0.6, 70.0], best_epoch=3)
    assert _run(tmp_path, [("han", "HAN")]) == 2
    err = capsys.readouterr().err
    assert "history.jsonl: modality_discriminator_accuracy is not in [0, 1] in epoch(s) [3]" in err


def _add_history_values(train_dir, values, best_epoch):
    """Add ``values`` (key -> one value per epoch) to the experiment's history; set the selected epoch."""
    history = [json.loads(line) for line in (train_dir / "history.jsonl").read_text().splitlines()]
    for epoch, record in enumerate(history):
        record.update({key: column[epoch] for key, column in values.items()})
    (train_dir / "history.jsonl").write_text("".join(json.dumps(r) + "\n" for r in history))
    (train_dir / "val_metrics.json").write_text(json.dumps({"epoch": best_epoch}))


def test_gradient_modulation_is_shown_only_for_experiments_that_record_it(tmp_path):
    plain, modulated = tmp_path / "plain", tmp_path / "modulated"
    assert _report(plain)[0] == 0
    assert not (plain / "out" / "figures" / "gradient_modulation.png").exists()
    assert "Gradient modulation" not in (plain / "out" / "report.md").read_text()

    results = _inputs(modulated, ["han", "a_cross_v_self"])
    curves = {"omega": [1.5, 1.2, 0.8], "mu_audio": [1.0, 1.0, 0.95], "mu_visual": [0.85, 0.9, 0.99]}
    _add_history_values(results / "train" / "han", curves, best_epoch=2)
    assert _run(modulated, TWO_EXPERIMENTS) == 0
    markdown = (modulated / "out" / "report.md").read_text()
    assert "## Gradient modulation" in markdown and "mu_v = 1 - tanh(gamma omega)" in markdown
    assert _table(markdown, MODULATION_HEADER) == [
        [
            "han",
            "omega 1.500, mu_a 1.000, mu_v 0.850 (epoch 1)",
            "omega 0.800, mu_a 0.950, mu_v 0.990 (epoch 3)",
            "omega 1.200, mu_a 1.000, mu_v 0.900 (epoch 2)",
        ]
    ]
    assert (modulated / "out" / "figures" / "gradient_modulation.png").is_file()
    assert "gradient_modulation.png" in markdown


def test_gradient_modulation_values_out_of_range_are_an_error(tmp_path, capsys):
    results = _inputs(tmp_path, ["han"])
    curves = {"omega": [1.5, 1.2, 0.8], "mu_audio": [1.0, 1.0, 1.0], "mu_visual": [0.85, 1.2, 0.0]}
    _add_history_values(results / "train" / "han", curves, best_epoch=3)
    assert _run(tmp_path, [("han", "HAN")]) == 2
    assert "history.jsonl: mu_visual is not in (0, 1] in epoch(s) [2, 3]" in capsys.readouterr().err


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
         "--features", str(tmp_path / "again" / "features.h5"), "--reference", str(REFERENCE),
         "--output-md", str(tmp_path / "r.md"), "--output-html", str(tmp_path / "r.html")]
    )  # fmt: skip
    assert argv_code == 2
    assert f"{broken}: metrics lack event-level visual" in capsys.readouterr().err
    assert not (tmp_path / "r.md").exists()


def _write_graphs(path):
    """A graph file of three clips: no link (10 components), all linked (1), one linked pair (9)."""
    graphs = np.stack([np.eye(10, dtype=bool), np.ones((10, 10), dtype=bool), np.eye(10, dtype=bool)])
    graphs[2, 0, 1] = graphs[2, 1, 0] = True
    attrs = {
        "visual_threshold": 0.73456, "visual_quantile": 0.9, "audio_threshold": 0.8, "audio_quantile": None,
        "source": "features.h5", "source_features": {}, **graph_summary(graphs), "clips_skipped": 2,
    }  # fmt: skip
    write_graph_file(path, [f"clip{i:07d}_0_10" for i in range(3)], graphs, attrs)
    return path


def _write_pretraining(directory, losses, parts):
    """An 'avvp pretrain' history.jsonl with ``losses`` per epoch, split equally into ``parts`` (L_u, L_x)."""
    directory.mkdir(parents=True)
    records = [
        {
            "epoch": e,
            "lr": 1e-4,
            "loss": loss,
            **dict.fromkeys(parts, loss / len(parts)),
            "positive_pair_share": 0.3,
        }
        for e, loss in enumerate(losses, start=1)
    ]
    (directory / "history.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    return directory


def _capture_figures(monkeypatch):
    """File name -> matplotlib figure of every figure the report saves."""
    drawn, save = {}, figures._save

    def capture(figure, path):
        drawn[path.name] = figure
        return save(figure, path)

    monkeypatch.setattr(figures, "_save", capture)
    return drawn


def _pretraining_options(tmp_path):
    uni = _write_pretraining(tmp_path / "pretrain" / "uni", [0.5, 0.4, 0.3123], ["L_u"])
    multi = _write_pretraining(tmp_path / "pretrain" / "multi", [0.9, 0.6, 0.2468], ["L_u", "L_x"])
    return ["--pretraining", "uni", str(uni), "--pretraining", "multi", str(multi)]


def test_avg_pretraining_section_shows_graphs_and_runs(tmp_path, monkeypatch):
    drawn = _capture_figures(monkeypatch)
    graphs = _write_graphs(tmp_path / "graphs.h5")
    code, _ = _report(tmp_path, extra=["--graphs", str(graphs), *_pretraining_options(tmp_path)])
    assert code == 0
    markdown = (tmp_path / "out" / "report.md").read_text()
    assert markdown.index("## Training curves") < markdown.index("## AVG pretraining")
    assert markdown.index("## AVG pretraining") < markdown.index("## Dataset coverage")
    assert 'paper 002\'s "Pretrained" and "Pretrain E2E" rows' in markdown
    assert _table(markdown, "grounding graphs") == [
        ["visual threshold (ResNet152 cosine)", "0.7346 (quantile 0.9 of the within-clip snippet pairs)"],
        ["audio threshold (VGGish cosine)", "0.8000 (given)"],
        ["clips", "3 (2 skipped for lacking a feature kind)"],
        ["connected components per clip (mean)", "6.67"],  # (10 + 1 + 9) / 3
        ["positive snippet pairs (share of the pairs of distinct snippets)", "34.1%"],  # (90 + 2) / 270
    ]
    assert _table(markdown, "variant") == [
        ["uni", "3", "0.5000", "0.3123"],
        ["multi", "3", "0.9000", "0.2468"],
    ]
    assert sorted(p.name for p in (tmp_path / "out" / "figures").iterdir()) == sorted(
        MAIN_FIGURES + AVG_FIGURES
    )
    for name in AVG_FIGURES:
        assert f"figures/{name}" in markdown
    assert (tmp_path / "out" / "report.html").read_text().count("data:image/png;base64,") == 5

    bars = drawn["graph_components.png"].axes[0].patches
    assert [(b.get_x() + b.get_width() / 2, b.get_height()) for b in bars] == [
        (c, 1 if c in (1, 9, 10) else 0) for c in range(1, 11)
    ]
    curves = {
        line.get_label(): (line.get_linestyle(), line.get_color(), list(line.get_ydata()))
        for line in drawn["pretraining_loss.png"].axes[0].get_lines()
    }
    assert curves == {
        "uni: L_avg": ("-", "C0", [0.5, 0.4, 0.3123]),
        "uni: L_u": ("--", "C0", [0.5, 0.4, 0.3123]),
        "multi: L_avg": ("-", "C1", [0.9, 0.6, 0.2468]),
        "multi: L_u": ("--", "C1", [0.45, 0.3, 0.1234]),
        "multi: L_x": ("-.", "C1", [0.45, 0.3, 0.1234]),
    }


def test_avg_pretraining_inputs_missing_or_alone(tmp_path, capsys):
    results = _inputs(tmp_path, ["han"])
    missing = tmp_path / "nowhere" / "graphs.h5"
    assert _run(tmp_path, [("han", "HAN")], extra=["--graphs", str(missing)]) == 2
    err = capsys.readouterr().err
    assert f"{missing}: grounding graph file not found" in err and len(err.strip().splitlines()) == 1
    assert _run(tmp_path, [("han", "HAN")], extra=["--pretraining", "uni", str(results)]) == 2
    err = capsys.readouterr().err
    assert f"{results / 'history.jsonl'}: file not found" in err and len(err.strip().splitlines()) == 1
    pretraining = _pretraining_options(tmp_path)
    twice = [*pretraining, "--pretraining", "uni", str(tmp_path / "pretrain" / "multi")]
    assert _run(tmp_path, [("han", "HAN")], extra=twice) == 2
    assert "pretraining variant 'uni' is given twice" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()

    assert _run(tmp_path, [("han", "HAN")], extra=pretraining[:3]) == 0
    markdown = (tmp_path / "out" / "report.md").read_text()
    assert "## AVG pretraining" in markdown and "Grounding graphs" not in markdown
    assert _table(markdown, "variant") == [["uni", "3", "0.5000", "0.3123"]]
    assert not (tmp_path / "out" / "figures" / "graph_components.png").exists()


def test_denoising_section_shows_noise_ratios_and_removed_labels(tmp_path):
    results = _inputs(tmp_path, ["han"])
    audio, visual = np.zeros(len(CLASSES)), np.zeros(len(CLASSES))
    audio[CLASSES.index("Speech")], visual[CLASSES.index("Speech")] = 0.125, 0.5
    write_noise_ratios(tmp_path / "ratios.npz", NoiseRatios(audio, visual))
    history = results / "train" / "han" / "history.jsonl"
    records = [json.loads(line) for line in history.read_text().splitlines()]
    for record in records:
        record.update(dropped_audio=0.05, dropped_visual=0.25)
    history.write_text("".join(json.dumps(r) + "\n" for r in records))
    decision = {"rule": "modality", "segment": 0.5, "video": 0.5}
    (results / "predict" / "han").mkdir(parents=True)
    (results / "predict" / "han" / "decision.json").write_text(json.dumps(decision))
    extra = ["--noise-ratios", "jomold", str(tmp_path / "ratios.npz")]
    assert _run(tmp_path, [("han", "JoMoLD")], extra=extra) == 0
    markdown = (tmp_path / "out" / "report.md").read_text()
    ratios = _table(markdown, "class | jomold: audio")
    assert len(ratios) == len(CLASSES) and ["Speech", "0.125", "0.500"] in ratios
    assert _table(markdown, "experiment | last epoch") == [
        ["han", str(records[-1]["epoch"]), "5.0 %", "25.0 %"]
    ]
    assert (tmp_path / "out" / "figures" / "noise_ratios.png").is_file()
    assert "| **han** (this run; decision rule modality) | segment |" in markdown
    assert "`modality` each modality's own (JoMoLD)" in markdown
    assert (
        "## Label denoising" not in (_report(tmp_path / "plain")[1].parent / "out" / "report.md").read_text()
    )


def test_refinement_section_shows_labels_removed_per_class_and_modality(tmp_path):
    _inputs(tmp_path, ["ma"])
    labels = np.zeros((4, len(CLASSES)), dtype=bool)
    speech, dog = CLASSES.index("Speech"), CLASSES.index("Dog")
    labels[:, speech] = labels[:2, dog] = True
    audio, visual = np.zeros_like(labels), np.zeros_like(labels)
    audio[0, speech] = visual[1:, speech] = visual[0, dog] = True
    ids = [f"{c * 11}_0_10" for c in "abcd"]
    refined = RefinedLabels(ids, labels, {"audio": audio, "visual": visual}, ["", "", "", ""])
    write_refined_labels(tmp_path / "refined.npz", refined)
    extra = ["--refined-labels", "ma", str(tmp_path / "refined.npz")]
    assert _run(tmp_path, [("ma", "MA (with CL)")], extra=extra) == 0
    markdown = (tmp_path / "out" / "report.md").read_text()
    assert "## Label refinement" in markdown and "### Labels removed per class" in markdown
    rows = {row[0]: row[1:] for row in _table(markdown, "class | ma: labels")}
    assert rows["Speech"] == ["4", "1 (25.0 %)", "3 (75.0 %)"]
    assert rows["Dog"] == ["2", "0 (0.0 %)", "1 (50.0 %)"]
    assert "Cat" not in rows  # no label to remove
    assert rows["all classes"] == ["6", "1 (16.7 %)", "4 (66.7 %)"]
    assert (tmp_path / "out" / "figures" / "refined_labels.png").is_file()
    assert (
        "## Label refinement" not in (_report(tmp_path / "plain")[1].parent / "out" / "report.md").read_text()
    )


def test_a_score_the_paper_does_not_give_is_shown_as_such(tmp_path):
    assert _report(tmp_path, [("ma", "MA (w/o CL)")])[0] == 0
    markdown = (tmp_path / "out" / "report.md").read_text()
    row = next(
        r for r in _table(markdown, SCORES_HEADER) if r[0].endswith("MA (w/o CL)") and r[1] == "segment"
    )
    assert row[2:] == ["59.8", "57.5", "52.6", "56.6", "not given"]


def test_the_per_class_legend_covers_no_bar(tmp_path, monkeypatch):
    drawn = []
    monkeypatch.setattr(figures, "_save", lambda figure, path: drawn.append(figure) or path)
    names = [
        "han",
        "a_cross_v_self",
        "base_adv_skip_gcaa",
        "pretrain_e2e_uni",
        "jomold_dgm_msdu",
        "ma",
        "baseline",
    ]
    methods = [
        (name, synthetic_metrics(i, n=12, noise=0.05)) for i, name in enumerate(names)
    ]  # bars near 100 %
    figures.per_class_f1(methods, tmp_path / "per_class_f1.png")
    (figure,) = drawn
    figure.canvas.draw()
    (legend,) = figure.legends
    assert [text.get_text() for text in legend.get_texts()] == names
    box = legend.get_window_extent()
    for ax in figure.axes:
        assert not ax.get_legend() and not box.overlaps(ax.get_window_extent()), (
            "the legend lies over a panel"
        )


def test_a_class_name_is_escaped_alike_in_every_table(tmp_path):
    results = _inputs(tmp_path, ["han"])
    for name in ("han", "weak_baseline"):  # Frying_(food) gets a score, so the attention table shows it
        path = results / "metrics" / f"{name}.json"
        metrics = json.loads(path.read_text())
        metrics["per_class"]["segment"]["audio"]["Frying_(food)"] = 50.0
        path.write_text(json.dumps(metrics))
    write_noise_ratios(
        tmp_path / "ratios.npz", NoiseRatios(np.full(len(CLASSES), 0.1), np.zeros(len(CLASSES)))
    )
    extra = ["--noise-ratios", "jomold", str(tmp_path / "ratios.npz")]
    assert _run(tmp_path, [("han", "HAN")], extra=extra) == 0
    markdown = (tmp_path / "out" / "report.md").read_text()
    attention, ratios = (
        _table(markdown, "class | han: audio share"),
        _table(markdown, "class | jomold: audio"),
    )
    assert "Frying\\_(food)" in [row[0] for row in attention] and "Frying\\_(food)" in [
        row[0] for row in ratios
    ]
    assert "Frying_(food)" not in markdown.replace("Frying\\_(food)", "")  # nowhere unescaped
    assert "<td>Frying_(food)</td>" in (tmp_path / "out" / "report.html").read_text()


def test_pseudo_label_section_shows_each_teachers_agreement(tmp_path):
    _inputs(tmp_path, ["ma"])
    scores = {m: 10.0 * i for i, m in enumerate(("audio", "visual", "audio_visual", "type", "event"), 1)}
    split = {"videos": 24, "missing": 0, "segment": scores, "event": scores}
    extractor = {"weights": "random-init(seed=0)", "model": "tiny"}
    teacher = {"visual": {"extractor": extractor}, "audio": {"source": "released VALOR pseudo-labels"}}
    (tmp_path / "agreement.json").write_text(json.dumps({"teacher": teacher, "splits": {"val": split}}))
    extra = ["--pseudo-labels", "valor", str(tmp_path / "agreement.json")]
    assert _run(tmp_path, [("ma", "MA (with CL)")], extra=extra) == 0
    markdown = (tmp_path / "out" / "report.md").read_text()
    assert "## Teachers' pseudo-labels" in markdown and "meaningless" in markdown
    rows = _table(markdown, "teacher | split")
    assert rows == [["valor", "val", "24", "random-init(seed=0) (tiny)", "released VALOR pseudo-labels",
                     "10.0", "20.0", "30.0", "10.0", "20.0"]]  # fmt: skip
    (tmp_path / "bad.json").write_text("{}")
    assert (
        _run(
            tmp_path, [("ma", "MA (with CL)")], extra=["--pseudo-labels", "valor", str(tmp_path / "bad.json")]
        )
        != 0
    )


def test_an_experiment_no_paper_reports_is_shown_as_new_and_external_rows_are_labelled(tmp_path):
    _inputs(tmp_path, ["valor", "valor_dgm_msdu"])
    code = _run(
        tmp_path, [("valor", "VALOR"), ("valor", "VALOR+")], extra=["--new-experiment", "valor_dgm_msdu"]
    )
    assert code == 0
    markdown = (tmp_path / "out" / "report.md").read_text()
    labels = [(row[0], row[1]) for row in _table(markdown, SCORES_HEADER)]
    assert labels[:6] == [
        ("**valor** (this run)", "segment"),
        ("**valor** (this run)", "event"),
        ("paper external:VALOR-NeurIPS2023 table n/a (issue 19 text): VALOR", "segment"),
        ("paper external:VALOR-NeurIPS2023 table n/a (scores not in our sources): VALOR+", "segment"),
        ("**valor_dgm_msdu** (this run; new: no paper reports it)", "segment"),
        ("**valor_dgm_msdu** (this run; new: no paper reports it)", "event"),
    ]
    assert "VALOR | segment | 61.8 | 65.9 | 58.4 | 62.0 | 61.5" in markdown
    assert "VALOR+ | segment | not given | not given" in markdown
    assert _run(tmp_path, [("valor", "VALOR")], extra=["--new-experiment", "valor"]) != 0


def test_runs_trained_on_a_random_init_teachers_pseudo_labels_are_marked(tmp_path):
    results = _inputs(tmp_path, ["han", "a_cross_v_self"])
    ids = ["aaaaaaaaaaa_0_10"]
    labels = np.zeros((1, 10, len(CLASSES)), dtype=np.float32)
    for name, weights in [
        ("han", "random-init(seed=0)"),
        ("a_cross_v_self", "openai/clip-vit-large-patch14"),
    ]:
        teacher = {modality: {"extractor": {"weights": weights}} for modality in ("audio", "visual")}
        write_pseudo_labels(tmp_path / f"{name}.h5", ids, labels, labels, CLASSES, teacher)
        (results / "train" / name / "config.yaml").write_text(f"pseudo_labels: {tmp_path / f'{name}.h5'}\n")
    assert _run(tmp_path, TWO_EXPERIMENTS) == 0
    markdown = (tmp_path / "out" / "report.md").read_text()
    names = {row[0] for row in _table(markdown, SCORES_HEADER) if row[0].startswith("**")}
    assert names == {
        "**han** (this run; pseudo-labels of a random-init teacher: meaningless)",
        "**a_cross_v_self** (this run)",
    }
    learning = [row[0] for row in _table(markdown, "method | audio F1")]
    assert "han (random-init teacher)" in learning and "a_cross_v_self" in learning
