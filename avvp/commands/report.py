"""``avvp report``: the run's Markdown and HTML report."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from avvp.reports.inputs import check_metrics, load_experiment, read_json
from avvp.reports.render import build_report

log = logging.getLogger(__name__)


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``report`` and its options."""
    parser = subparsers.add_parser(
        "report",
        help="write the run's report (Markdown + self-contained HTML) with figures",
        description=(
            "Write a report of one run: the ten LLP metrics of every experiment beside the paper's numbers "
            "for the same method, the weak-label baseline, per-class F1 bars, modality-attention "
            "distributions, training curves, dataset coverage and the weights identity of the features. "
            "Experiment NAME is read from RESULTS_DIR/metrics/NAME.json, RESULTS_DIR/train/NAME/history.jsonl "
            "and the attention.json of RESULTS_DIR/predict/NAME/ (else of train/NAME/): the workflow's layout."
        ),
    )
    parser.add_argument("--run-name", required=True, help="name of the run (report title)")
    parser.add_argument("--results-dir", required=True, help="the run's results folder")
    parser.add_argument(
        "--experiment",
        nargs=2,
        action="append",
        required=True,
        metavar=("NAME", "PAPER_METHOD"),
        help="an experiment and the method name in the reference CSV it is compared with (repeatable)",
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
    parser.add_argument("--paper", default="000", help="paper whose numbers are shown (default %(default)s)")
    parser.add_argument("--output-md", required=True, help="Markdown report to write (figures go beside it)")
    parser.add_argument("--output-html", required=True, help="HTML report to write")
    return parser


def run(args: argparse.Namespace) -> int:
    """Write both reports; return 0."""
    results = Path(args.results_dir)
    experiments = [
        load_experiment(
            name,
            method,
            results / "metrics" / f"{name}.json",
            results / "train" / name,
            results / "predict" / name,
        )
        for name, method in args.experiment
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
    )
    log.info("wrote %s and %s", args.output_md, args.output_html)
    return 0
