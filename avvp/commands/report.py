"""``avvp report``: the run's Markdown and HTML report."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from avvp.commands import COMMANDS
from avvp.errors import InputError
from avvp.reports.inputs import (
    check_metrics,
    load_experiment,
    read_graph_summary,
    read_json,
    read_pretraining,
)
from avvp.reports.render import build_report
from avvp.reports.teachers import read_agreement
from avvp.training.noise_ratios import read_noise_ratios
from avvp.training.refined_labels import read_refined_labels

log = logging.getLogger(__name__)


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``report`` and its options."""
    parser = subparsers.add_parser(
        "report",
        help=COMMANDS["report"],
        description=(
            "Write a report of one run: the ten LLP metrics of every experiment beside every row of the "
            "reference CSV for the paper methods it reproduces (any paper, or those of --paper), the "
            "weak-label baseline, per-class F1 bars, modality-attention distributions, training curves "
            "(with the modality discriminator's accuracy of adversarial models), dataset coverage and the "
            "weights identity of the features. "
            "Experiment NAME is read from RESULTS_DIR/metrics/NAME.json, the history.jsonl and val_metrics.json "
            "of RESULTS_DIR/train/NAME/ and the attention.json of RESULTS_DIR/predict/NAME/ (else of "
            "train/NAME/): the workflow's layout. With --graphs or --pretraining the report adds a section on "
            "AVG pretraining (paper 002 section 3.2): the grounding graphs and the pretraining loss curves. With "
            "--noise-ratios it adds a section on JoMoLD's label denoising (paper 003), with --refined-labels one "
            "on MA's label refinement."
        ),
    )
    parser.add_argument("--run-name", required=True, help="name of the run (report title)")
    parser.add_argument("--results-dir", required=True, help="the run's results folder")
    parser.add_argument(
        "--experiment",
        nargs=2,
        action="append",
        default=[],
        metavar=("NAME", "PAPER_METHOD"),
        help=(
            "an experiment and a method of the reference CSV (its 'method' column, exactly) it is shown "
            "beside; repeatable, and repeating a NAME adds methods to it, e.g. --experiment han "
            "'A_cross+V_cross (HAN)' --experiment han HAN"
        ),
    )
    parser.add_argument(
        "--new-experiment",
        action="append",
        default=[],
        metavar="NAME",
        help="an experiment no paper reports (a new combination): shown without reference rows; repeatable",
    )
    parser.add_argument("--baseline", help="metrics JSON of the weak-label baseline")
    parser.add_argument("--features", required=True, help="the feature store used (for its weights identity)")
    parser.add_argument(
        "--manifest",
        action="append",
        default=[],
        help="download manifest of a shard (repeatable; for coverage)",
    )
    parser.add_argument(
        "--coverage", help="coverage.json of 'avvp filter-splits' (clips with features per split)"
    )
    parser.add_argument(
        "--reference", required=True, help="reference results CSV (resources/paper_results.csv)"
    )
    parser.add_argument(
        "--paper",
        action="append",
        default=[],
        help="show only the reference rows of this paper (its 'paper' column, e.g. 000; repeatable; "
        "default: every paper)",
    )
    parser.add_argument(
        "--graphs",
        metavar="G.h5",
        help="grounding-graph file of 'avvp build-graphs' used for pretraining: its thresholds, clips, "
        "connected components and share of positive snippet pairs are shown",
    )
    parser.add_argument(
        "--pretraining",
        nargs=2,
        action="append",
        default=[],
        metavar=("NAME", "DIR"),
        help="a pretraining variant (e.g. uni, cross, multi) and its 'avvp pretrain' output directory, whose "
        "history.jsonl gives the loss curves; repeatable, e.g. --pretraining uni runs/avg_uni "
        "--pretraining multi runs/avg_multi",
    )
    parser.add_argument(
        "--noise-ratios",
        nargs=2,
        action="append",
        default=[],
        metavar=("NAME", "FILE"),
        help="a noise estimator and its noise_ratios.npz of 'avvp estimate-noise' (JoMoLD): the ratios per "
        "class are shown with the share of labels each denoised run removed; repeatable",
    )
    parser.add_argument(
        "--refined-labels",
        nargs=2,
        action="append",
        default=[],
        metavar=("NAME", "FILE"),
        help="a label refiner and its .npz of 'avvp refine-labels' (MA): the labels removed per class and "
        "modality are shown; repeatable",
    )
    parser.add_argument(
        "--pseudo-labels",
        nargs=2,
        action="append",
        default=[],
        metavar=("NAME", "FILE"),
        help="a teacher and the agreement JSON of 'avvp pseudo-labels --agreement': the segment-level F1 of "
        "its pseudo-labels against the dense labels is shown; repeatable",
    )
    parser.add_argument("--output-md", required=True, help="Markdown report to write (figures go beside it)")
    parser.add_argument("--output-html", required=True, help="HTML report to write")
    return parser


def paper_methods(pairs: list[list[str]], new: list[str] = ()) -> dict[str, list[str]]:
    """The ``--experiment NAME METHOD`` pairs as NAME -> its methods, both in the order first given, then
    each ``--new-experiment`` NAME with no method. :class:`InputError` when there is no experiment, or a
    new one also has methods."""
    if not pairs and not new:
        raise InputError(
            "avvp report: give at least one --experiment NAME PAPER_METHOD or --new-experiment NAME"
        )
    both = sorted({name for name, _ in pairs} & set(new))
    if both:
        raise InputError(f"avvp report: {both} given both with a paper method and as --new-experiment")
    methods: dict[str, list[str]] = {}
    for name, method in pairs:
        methods.setdefault(name, [])
        if method not in methods[name]:
            methods[name].append(method)
    methods.update({name: [] for name in new})
    return methods


def run(args: argparse.Namespace) -> int:
    """Write both reports; return 0."""
    results = Path(args.results_dir)
    experiments = [
        load_experiment(
            name,
            methods,
            results / "metrics" / f"{name}.json",
            results / "train" / name,
            results / "predict" / name,
        )
        for name, methods in paper_methods(args.experiment, args.new_experiment).items()
    ]
    baseline = check_metrics(args.baseline, read_json(args.baseline)) if args.baseline else None
    build_report(
        args.run_name,
        experiments,
        baseline,
        args.reference,
        args.paper,
        args.features,
        args.manifest,
        read_json(args.coverage) if args.coverage else None,
        args.output_md,
        args.output_html,
        read_graph_summary(args.graphs) if args.graphs else None,
        read_pretraining(args.pretraining),
        {name: read_noise_ratios(path) for name, path in args.noise_ratios},
        {name: read_refined_labels(path) for name, path in args.refined_labels},
        {name: read_agreement(path) for name, path in args.pseudo_labels},
    )
    log.info("wrote %s and %s", args.output_md, args.output_html)
    return 0
