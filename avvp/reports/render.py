"""Building the run report as Markdown, and as one self-contained HTML page (figures embedded)."""

from __future__ import annotations

import base64
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from markdown_it import MarkdownIt
from markupsafe import Markup

from avvp.data.labels import CLASSES
from avvp.evaluation import METRIC_NAMES
from avvp.io import atomic_path
from avvp.reports import figures, teachers
from avvp.reports.inputs import (
    LEVELS,
    METRIC_TITLES,
    Coverage,
    Experiment,
    read_coverage,
    read_feature_identity,
)
from avvp.reports.reference import ReferenceRow, read_reference
from avvp.templates import render
from avvp.training.noise_ratios import MODALITIES, NoiseRatios
from avvp.training.refined_labels import RefinedLabels

BASELINE_NAME = "weak-label baseline"
MISSING_SHOWN = 20
ATTENTION = "Modality attention"
CURVES = "Training curves"
DISCRIMINATOR_NOTE = (
    "Accuracy of the modality discriminator of the adversarial models at telling audio segments from visual "
    "segments, averaged over each epoch's training steps. 0.5 means it cannot tell the two modalities apart, "
    "which is where the adversarial objective pushes it; near 1 the segment features still give their "
    "modality away; well below 0.5 it is wrong more often than chance: the encoder makes audio look visual "
    "and visual look audio instead of making them indistinguishable."
)
MODULATION = "Gradient modulation"
MODULATION_NOTE = (
    "Dynamic gradient modulation (paper 004, section III-B). On each training batch, omega (v-a) is the ratio "
    "of the visual to the audio progress (eq. 6: scores of the true classes plus the gap between the mean "
    "true-class and the mean wrong-class score, from the modality-separated heads when the model has them); "
    "above 1 the visual modality leads and the gradients of its own parameters are scaled by "
    "mu_v = 1 - tanh(gamma omega), below 1 the audio ones by mu_a = 1 - tanh(gamma / omega) (eq. 7). "
    "Values are means over each epoch's steps, so both mu can be below 1 when the lead changed within an epoch."
)
AVG = "AVG pretraining"
AVG_NOTE = (
    "Pretraining of the audio and visual input encoder on audio-visual grounding (AVG) graphs (paper 002, "
    "section 3.2): for each 1-second snippet of a clip, the encoder learns which other snippets of the clip "
    "belong with it, as the clip's grounding graph says. The experiments that start from this encoder are "
    'compared with paper 002\'s "Pretrained" and "Pretrain E2E" rows in the score table.'
)
GRAPHS_NOTE = (
    "Two snippets of a clip are linked when their ResNet152 or their VGGish embeddings are at least as "
    "similar (cosine) as the threshold; the snippets of one connected component are positive pairs, all "
    "other pairs negative ones."
)
COMPONENTS = "Connected components per clip"
PRETRAINING_LOSS = "Pretraining loss"
PRETRAINING_NOTE = (
    "L_avg is the grounding loss the encoder minimises (mean over each epoch's steps); the figure adds its "
    "parts where recorded: L_u (audio-audio and visual-visual pairs, dashed) and L_x (audio-visual pairs, "
    "dash-dotted), in the colour of the variant."
)
RULES_NOTE = (
    "Decision rule: a segment is positive for a class where its probability is at least 0.5 and a "
    "video-level probability of the class is too; `fused` takes the fused probability for both modalities "
    "(HAN), `modality` each modality's own (JoMoLD)."
)
DENOISING = "Label denoising"
DENOISING_NOTE = (
    "JoMoLD (paper 003) trains a noise estimator, then estimates for each class the share of its training "
    "labels that are noise in the audio or in the visual modality (a label the clip's audio, or picture, does "
    "not support). The denoised training removes up to that share of each class's labels per batch, where "
    "the two modalities' losses agree that the label is noise."
)
NOISE_RATIOS = "Noise ratios per class"
REFINEMENT = "Label refinement"
REFINEMENT_NOTE = (
    "MA (Wu and Yang, CVPR 2021) trains a base model on the weak labels, then runs it on every training clip "
    "with its audio track, or its visual track, exchanged for that of a clip whose labels share no class "
    "with its own. A visual label is removed where the clip's own picture with the other clip's sound "
    "gives the class a low visual and a low audio probability (below 0.5 times the class's visual error "
    "rate over the largest one); audio labels likewise. The experiments that name the refiner are trained "
    "on the labels that remain."
)
REMOVED_LABELS = "Labels removed per class"
MARKDOWN_SPECIAL = re.compile(r"[\\`*\[\]<>&]|(?<![^\W_])_|_(?![^\W_])")
"""Characters that start Markdown or HTML constructs; an underscore inside a word starts none."""


@dataclass
class ReportData:
    """Everything a report shows. ``papers`` restricts the reference rows (empty: every paper),
    ``reference`` maps an experiment's name to the rows it is shown beside, ``figures`` a caption to a PNG.
    ``graphs`` holds the attributes of the grounding-graph file, ``pretraining`` each pretraining variant's
    history and ``pretraining_figures`` the AVG figures by caption (None and empty without AVG pretraining);
    ``noise_ratios`` each noise estimator's ratios and ``denoising_figures`` their figure (empty without);
    ``refined_labels`` each label refiner's removed labels and ``refinement_figures`` their figure."""

    run: str
    papers: list[str]
    experiments: list[Experiment]
    baseline: dict[str, Any] | None
    reference: dict[str, list[ReferenceRow]]
    coverage: Coverage | None
    splits: dict[str, Any] | None
    features: dict[str, dict[str, Any]]
    figures: dict[str, Path]
    graphs: dict[str, Any] | None
    pretraining: dict[str, list[dict[str, Any]]]
    pretraining_figures: dict[str, Path]
    noise_ratios: dict[str, NoiseRatios] = field(default_factory=dict)
    denoising_figures: dict[str, Path] = field(default_factory=dict)
    refined_labels: dict[str, RefinedLabels] = field(default_factory=dict)
    refinement_figures: dict[str, Path] = field(default_factory=dict)
    pseudo_labels: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Teacher name -> its pseudo-labels' agreement with the dense labels (:mod:`avvp.reports.teachers`)."""


class Markdown(str):
    """A table cell already written as Markdown (its names escaped with :func:`_text`): kept as it is."""


def _text(text: str) -> str:
    """``text`` as literal Markdown (names, labels): special characters backslash-escaped, line breaks
    turned into spaces, so that it cannot become markup, HTML or a new table row. The one escaping of the
    report: table cells go through it too (:func:`_table`)."""
    return MARKDOWN_SPECIAL.sub(lambda match: "\\" + match.group(), " ".join(text.splitlines()))


def _cell(value: Any) -> str:
    """A table cell: :class:`Markdown` as it is, anything else as literal text; ``|`` escaped in both."""
    text = value if isinstance(value, Markdown) else _text(str(value))
    return text.replace("|", "\\|")


def _table(header: Sequence[Any], rows: Sequence[Sequence[Any]]) -> list[str]:
    """A Markdown table; cells are literal text unless they are :class:`Markdown`."""
    cells = [[_cell(c) for c in row] for row in [header, *rows]]
    return [
        "| " + " | ".join(cells[0]) + " |",
        "|" + "|".join("---" for _ in header) + "|",
        *("| " + " | ".join(row) + " |" for row in cells[1:]),
    ]


def _scores(values: dict[str, float | None]) -> list[str]:
    """The five scores to one decimal; a score a paper does not give is shown as "not given"."""
    return ["not given" if values[m] is None else f"{values[m]:.1f}" for m in METRIC_NAMES]


def _score_rows(data: ReportData) -> list[list[str]]:
    rows = []
    for experiment in data.experiments:
        rule = f"; decision rule {experiment.decision_rule}" if experiment.decision_rule else ""
        new = "" if experiment.paper_methods else "; new: no paper reports it"
        teacher = (
            "; pseudo-labels of a random-init teacher: meaningless" if experiment.random_init_teacher else ""
        )
        name = Markdown(f"**{_text(experiment.name)}** (this run{_text(rule + new + teacher)})")
        rows += [[name, level, *_scores(experiment.metrics[level])] for level in LEVELS]
        rows += [[row.label, row.level, *_scores(row.scores)] for row in data.reference[experiment.name]]
    if data.baseline:
        rows += [[BASELINE_NAME, level, *_scores(data.baseline[level])] for level in LEVELS]
    return rows


def _reference_sentence(data: ReportData) -> str:
    papers = sorted({row.paper for rows in data.reference.values() for row in rows})
    shown = f"paper{'s' if len(papers) > 1 else ''} {', '.join(papers)}" if papers else "no row matches"
    only = f"; restricted to paper(s) {', '.join(data.papers)}" if data.papers else ""
    return _text(
        "Each experiment is followed by every row of the reference results for the methods it reproduces, "
        f"labelled with paper, table and method (LLP test set; {shown}{only})."
    )


def _code(text: str) -> Markdown:
    """``text`` as a Markdown code span (fenced with more backticks than it holds in a row)."""
    fence = "`" * (max((len(run) for run in re.findall("`+", text)), default=0) + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return Markdown(f"{fence}{pad}{' '.join(text.splitlines())}{pad}{fence}")


def _evaluated_on(metrics: dict[str, Any]) -> str:
    split = metrics.get("files", {}).get("split", "the evaluation split")
    return f"Evaluated on {metrics.get('videos', '?')} clips of {_code(str(split))}."


def _learning_rows(data: ReportData) -> list[list[str]]:
    base = data.baseline["segment"]
    rows = [[BASELINE_NAME, f"{base['audio']:.1f}", f"{base['visual']:.1f}", "", ""]]
    for e in data.experiments:
        seg = e.metrics["segment"]
        rows.append(
            [
                f"{e.name} (random-init teacher)" if e.random_init_teacher else e.name,
                f"{seg['audio']:.1f}",
                f"{seg['visual']:.1f}",
                f"{seg['audio'] - base['audio']:+.1f}",
                f"{seg['visual'] - base['visual']:+.1f}",
            ]
        )
    return rows


def _attention_lines(data: ReportData) -> list[str]:
    shown = [e for e in data.experiments if e.attention]
    classes = figures.present_classes([(e.name, e.metrics) for e in data.experiments])
    header = ["class", *(f"{e.name}: audio share (mean ± sd)" for e in shown)]
    rows = [
        [
            c,
            *(
                f"{e.attention['classes'][c]['mean_audio']:.2f} ± {e.attention['classes'][c]['std_audio']:.2f}"
                for e in shown
            ),
        ]
        for c in classes
    ]
    return ["", "Mean audio share per class:", "", *_table(header, rows)]


def _accuracy_cell(experiment: Experiment, epoch: int | None) -> str:
    accuracy = experiment.discriminator_accuracy.get(epoch)
    return "n/a" if accuracy is None else f"{accuracy:.3f} (epoch {epoch})"


def _discriminator_lines(data: ReportData) -> list[str]:
    shown = [e for e in data.experiments if e.discriminator_accuracy]
    if not shown:
        return []
    rows = [
        [
            e.name,
            *(
                _accuracy_cell(e, epoch)
                for epoch in (min(e.discriminator_accuracy), max(e.discriminator_accuracy), e.best_epoch)
            ),
        ]
        for e in shown
    ]
    header = ["experiment", "first epoch", "last epoch", "selected epoch (best validation Type@AV)"]
    return ["", DISCRIMINATOR_NOTE, "", *_table(header, rows)]


def _modulation_cell(experiment: Experiment, epoch: int | None) -> str:
    values = [experiment.modulation.get(key, {}).get(epoch) for key in ("omega", "mu_audio", "mu_visual")]
    if epoch is None or None in values:
        return "n/a"
    omega, mu_audio, mu_visual = values
    return f"omega {omega:.3f}, mu_a {mu_audio:.3f}, mu_v {mu_visual:.3f} (epoch {epoch})"


def _modulation_lines(data: ReportData) -> list[str]:
    shown = [e for e in data.experiments if e.modulation]
    rows = []
    for e in shown:
        epochs = e.modulation.get("omega", {})
        first, last = (min(epochs), max(epochs)) if epochs else (None, None)
        rows.append([e.name, *(_modulation_cell(e, epoch) for epoch in (first, last, e.best_epoch))])
    header = ["experiment", "first epoch", "last epoch", "selected epoch (best validation)"]
    return ["", MODULATION_NOTE, "", *_table(header, rows)]


FIGURE_TABLES: dict[str, Callable[[ReportData], list[str]]] = {
    ATTENTION: _attention_lines,
    CURVES: _discriminator_lines,
    MODULATION: _modulation_lines,
}
"""The tables shown under a figure, by caption."""


def _coverage_lines(data: ReportData) -> list[str]:
    coverage, lines = data.coverage, []
    if coverage is None:
        lines.append("Features were imported from released files; no videos were fetched.")
    else:
        available = coverage.total - len(coverage.missing)
        lines.append(
            f"{available} of {coverage.total} clips are available; **{len(coverage.missing)} missing**."
        )
        lines += ["", *_table(["download status", "clips"], list(coverage.by_status.items()))]
        if coverage.missing:
            shown = _text(", ".join(coverage.missing[:MISSING_SHOWN]))
            more = len(coverage.missing) - MISSING_SHOWN
            lines += ["", f"Missing: {shown}" + (f", ... ({more} more)" if more > 0 else "")]
    if data.splits:
        rows = [
            [split, c["total"], c["available"], c["missing"]] for split, c in data.splits["splits"].items()
        ]
        lines += [
            "",
            "Clips with every feature kind, per split (models are trained and scored on these):",
            "",
            *_table(["split", "clips", "with features", "missing"], rows),
        ]
    rows = [[k, v["clips"]] for k, v in data.features.items()]
    lines += ["", *_table(["feature kind", "clips with features"], rows)]
    return lines


def _threshold(graphs: dict[str, Any], modality: str) -> str:
    value, quantile = graphs[f"{modality}_threshold"], graphs[f"{modality}_quantile"]
    source = "given" if quantile is None else f"quantile {quantile:g} of the within-clip snippet pairs"
    return f"{value:.4f} ({source})"


def _graph_rows(graphs: dict[str, Any]) -> list[list[str]]:
    return [
        ["visual threshold (ResNet152 cosine)", _threshold(graphs, "visual")],
        ["audio threshold (VGGish cosine)", _threshold(graphs, "audio")],
        ["clips", f"{graphs['clips']} ({graphs['clips_skipped']} skipped for lacking a feature kind)"],
        ["connected components per clip (mean)", f"{graphs['components_mean']:.2f}"],
        [
            "positive snippet pairs (share of the pairs of distinct snippets)",
            f"{graphs['positive_pair_share']:.1%}",
        ],
    ]


def _pretraining_rows(pretraining: dict[str, list[dict[str, Any]]]) -> list[list[str]]:
    return [
        [variant, str(len(history)), f"{history[0]['loss']:.4f}", f"{history[-1]['loss']:.4f}"]
        for variant, history in pretraining.items()
    ]


def _figure_line(caption: str, path: Path, image: Callable[[Path], str]) -> str:
    return f"![{caption}]({image(path)})"


def _avg_lines(data: ReportData, image: Callable[[Path], str]) -> list[str]:
    """The AVG pretraining section: the grounding graphs and the pretraining runs given (nothing if none)."""
    if data.graphs is None and not data.pretraining:
        return []
    lines = ["", f"## {AVG}", "", AVG_NOTE]
    if data.graphs is not None:
        lines += [
            "",
            "### Grounding graphs",
            "",
            GRAPHS_NOTE,
            "",
            *_table(["grounding graphs", "value"], _graph_rows(data.graphs)),
            "",
            _figure_line(COMPONENTS, data.pretraining_figures[COMPONENTS], image),
        ]
    if data.pretraining:
        lines += [
            "",
            "### Pretraining runs",
            "",
            PRETRAINING_NOTE,
            "",
            *_table(
                ["variant", "epochs", "first epoch L_avg", "last epoch L_avg"],
                _pretraining_rows(data.pretraining),
            ),
            "",
            _figure_line(PRETRAINING_LOSS, data.pretraining_figures[PRETRAINING_LOSS], image),
        ]
    return lines


def _section_head(title: str, note: str, drawn: dict[str, Path], image: Callable[[Path], str]) -> list[str]:
    """A section's title, its note and each of its figures under its caption."""
    lines = ["", f"## {title}", "", note]
    for caption, path in drawn.items():
        lines += ["", f"### {caption}", "", _figure_line(caption, path, image)]
    return lines


def _dropped_rows(data: ReportData) -> list[list[str]]:
    """Per denoised experiment: the share of positive labels removed per step in its last epoch."""
    rows = []
    for e in data.experiments:
        last = next((r for r in reversed(e.history) if "dropped_audio" in r), None)
        if last is not None:
            shares = (f"{100 * last[f'dropped_{m}']:.1f} %" for m in ("audio", "visual"))
            rows.append([e.name, str(last["epoch"]), *shares])
    return rows


def _denoising_lines(data: ReportData, image: Callable[[Path], str]) -> list[str]:
    """The label-denoising section: noise ratios per class (figure and table), labels removed per run."""
    if not data.noise_ratios:
        return []
    lines = _section_head(DENOISING, DENOISING_NOTE, data.denoising_figures, image)
    names = list(data.noise_ratios)
    header = ["class", *(f"{n}: {m}" for n in names for m in ("audio", "visual"))]
    rows = [
        [
            c,
            *(f"{getattr(data.noise_ratios[n], m)[i]:.3f}" for n in names for m in ("audio", "visual")),
        ]
        for i, c in enumerate(CLASSES)
    ]
    lines += ["", *_table(header, rows)]
    dropped = _dropped_rows(data)
    if dropped:
        header = ["experiment", "last epoch", "audio labels removed", "visual labels removed"]
        lines += ["", "Share of the positive labels removed per training step, mean of the last epoch:", ""]
        lines += _table(header, dropped)
    return lines


def removed_shares(refined: RefinedLabels) -> NoiseRatios:
    """Per class and modality, the share of the class's labels the refinement removed (0 without labels)."""
    counts = refined.labels.sum(axis=0)
    return NoiseRatios(*(refined.removed[m].sum(axis=0) / np.maximum(counts, 1) for m in MODALITIES))


def _removed_cell(refined: RefinedLabels, modality: str, column: slice | int) -> str:
    removed, labels = int(refined.removed[modality][:, column].sum()), int(refined.labels[:, column].sum())
    return f"{removed} ({100 * removed / labels:.1f} %)" if labels else "0"


def _refinement_lines(data: ReportData, image: Callable[[Path], str]) -> list[str]:
    """The label-refinement section: per refiner and class, the labels and those removed per modality."""
    if not data.refined_labels:
        return []
    lines = _section_head(REFINEMENT, REFINEMENT_NOTE, data.refinement_figures, image)
    names = list(data.refined_labels)
    header = [
        "class",
        *(f"{n}: {h}" for n in names for h in ("labels", "audio removed", "visual removed")),
    ]
    labelled = np.any([r.labels.any(axis=0) for r in data.refined_labels.values()], axis=0)
    columns = [*((c, i) for i, c in enumerate(CLASSES) if labelled[i]), ("all classes", slice(None))]
    rows = [
        [
            name,
            *(
                cell
                for n in names
                for cell in (
                    str(int(data.refined_labels[n].labels[:, column].sum())),
                    *(_removed_cell(data.refined_labels[n], m, column) for m in MODALITIES),
                )
            ),
        ]
        for name, column in columns
    ]
    return [*lines, "", "Classes with training labels:", "", *_table(header, rows)]


def _identity_rows(features: dict[str, dict[str, Any]]) -> list[list[str]]:
    rows = []
    for kind, attrs in features.items():
        others = {k: v for k, v in attrs.items() if k not in ("clips", "extractor", "weights", "versions")}
        details = "; ".join(f"{k}={v}" for k, v in sorted(others.items()))
        rows.append([kind, attrs.get("extractor", "?"), _code(str(attrs.get("weights", "unknown"))), details])
    return rows


def render_markdown(data: ReportData, image: Callable[[Path], str]) -> str:
    """The report as Markdown; ``image(path)`` gives the reference written for each figure."""
    lines = [
        f"# AVVP report: run {_text(data.run)}",
        "",
        f"Generated {datetime.now(UTC):%Y-%m-%d %H:%M} UTC. F1 scores in percent with the LLP protocol "
        "(segment and event level; Type@AV and Event@AV as defined by LLP). " + _reference_sentence(data),
        "",
        "## Scores",
        "",
        _evaluated_on(data.experiments[0].metrics),
        "",
        *_table(["method", "level", *METRIC_TITLES], _score_rows(data)),
    ]
    if any(e.decision_rule for e in data.experiments):
        lines += ["", RULES_NOTE]
    if data.baseline:
        lines += [
            "",
            "## Does the model learn?",
            "",
            f"Segment-level F1 against the {BASELINE_NAME}, which predicts every true video-level label in all "
            "ten segments of both modalities (it knows which events occur, not when or where).",
            "",
            *_table(
                ["method", "audio F1", "visual F1", "audio vs baseline", "visual vs baseline"],
                _learning_rows(data),
            ),
        ]
    for caption, path in data.figures.items():
        lines += ["", f"## {caption}", "", _figure_line(caption, path, image)]
        if caption in FIGURE_TABLES:
            lines += FIGURE_TABLES[caption](data)
    lines += _denoising_lines(data, image)
    lines += _refinement_lines(data, image)
    if data.pseudo_labels:
        rows = [[_text(cell) for cell in row] for row in teachers.agreement_rows(data.pseudo_labels)]
        lines += ["", f"## {teachers.TITLE}", "", teachers.NOTE, "", *_table(teachers.HEADER, rows)]
    lines += _avg_lines(data, image)
    lines += ["", "## Dataset coverage", "", *_coverage_lines(data)]
    lines += [
        "",
        "## Feature weights",
        "",
        "Identity of the networks the features come from, as recorded in the feature store. "
        "`random-init` weights make features for testing the pipeline only: their scores say nothing about "
        "the published models.",
        "",
        *_table(["kind", "extractor", "weights", "parameters"], _identity_rows(data.features)),
        "",
    ]
    return "\n".join(lines)


def _data_uri(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def render_html(data: ReportData) -> str:
    """The report as one HTML page (template ``report.html.j2``) with the figures embedded as data URIs
    (raw HTML in the Markdown is shown as text, never passed through)."""
    body = MarkdownIt("commonmark", {"html": False}).enable("table").render(render_markdown(data, _data_uri))
    return render("report.html.j2", run=data.run, body=Markup(body))  # markdown-it escaped every text


def _pretraining_figures(
    graphs: dict[str, Any] | None, pretraining: dict[str, list[dict[str, Any]]], figure_dir: Path
) -> dict[str, Path]:
    """Draw the AVG figures of what is given: caption -> PNG."""
    drawn = {}
    if graphs is not None:
        drawn[COMPONENTS] = figures.components_histogram(
            graphs["components_histogram"], figure_dir / "graph_components.png"
        )
    if pretraining:
        drawn[PRETRAINING_LOSS] = figures.pretraining_losses(pretraining, figure_dir / "pretraining_loss.png")
    return drawn


def build_report(
    run: str,
    experiments: list[Experiment],
    baseline: dict[str, Any] | None,
    reference_csv: str | Path,
    papers: Sequence[str],
    features: str | Path,
    manifests: Sequence[str | Path],
    splits: dict[str, Any] | None,
    output_md: str | Path,
    output_html: str | Path,
    graphs: dict[str, Any] | None,
    pretraining: dict[str, list[dict[str, Any]]],
    noise_ratios: dict[str, NoiseRatios] | None = None,
    refined_labels: dict[str, RefinedLabels] | None = None,
    pseudo_labels: dict[str, dict[str, Any]] | None = None,
) -> ReportData:
    """Gather the inputs, draw the figures beside ``output_md`` (``figures/``) and write both reports.

    Each experiment is shown beside the rows of ``reference_csv`` for its paper methods, of ``papers``
    only unless empty; :class:`InputError` before anything is written when a paper or method has no row.
    ``graphs`` (the attributes of a grounding-graph file) and ``pretraining`` (variant -> history) add the
    AVG pretraining section (none when ``graphs`` is None and ``pretraining`` empty); ``noise_ratios``
    (estimator -> ratios) the label-denoising section; ``refined_labels`` (refiner -> its file's content)
    the label-refinement section; ``pseudo_labels`` (teacher -> agreement) the pseudo-label section.
    """
    reference = read_reference(reference_csv)
    reference.check_papers(papers)
    for experiment in experiments:
        reference.check_methods(experiment.name, experiment.paper_methods)
    output_md = Path(output_md)
    figure_dir = output_md.parent / "figures"
    methods = [(e.name, e.metrics) for e in experiments] + ([(BASELINE_NAME, baseline)] if baseline else [])
    classes = figures.present_classes(methods)
    drawn = {
        "Per-class F1": figures.per_class_f1(methods, figure_dir / "per_class_f1.png"),
        ATTENTION: figures.attention(experiments, classes, figure_dir / "attention.png"),
        CURVES: figures.training_curves(experiments, figure_dir / "training_curves.png"),
        MODULATION: figures.gradient_modulation(experiments, figure_dir / "gradient_modulation.png"),
    }
    data = ReportData(
        run=run,
        papers=list(papers),
        experiments=experiments,
        baseline=baseline,
        reference={e.name: reference.rows_of(e.paper_methods, papers) for e in experiments},
        coverage=read_coverage(manifests),
        splits=splits,
        features=read_feature_identity(features),
        figures={caption: path for caption, path in drawn.items() if path is not None},
        graphs=graphs,
        pretraining=pretraining,
        pretraining_figures=_pretraining_figures(graphs, pretraining, figure_dir),
        noise_ratios=noise_ratios or {},
        denoising_figures=(
            {
                NOISE_RATIOS: figures.class_shares(
                    noise_ratios,
                    figure_dir / "noise_ratios.png",
                    "share of the class's training labels estimated noisy",
                    "Label noise per class",
                )
            }
            if noise_ratios
            else {}
        ),
        refined_labels=refined_labels or {},
        refinement_figures=(
            {
                REMOVED_LABELS: figures.class_shares(
                    {n: removed_shares(r) for n, r in refined_labels.items()},
                    figure_dir / "refined_labels.png",
                    "share of the class's training labels removed",
                    "Labels removed by the refinement",
                )
            }
            if refined_labels
            else {}
        ),
        pseudo_labels=pseudo_labels or {},
    )
    with atomic_path(output_md) as tmp:
        tmp.write_text(
            render_markdown(data, lambda p: p.relative_to(output_md.parent).as_posix()), encoding="utf-8"
        )
    with atomic_path(output_html) as tmp:
        tmp.write_text(render_html(data), encoding="utf-8")
    return data
