"""Time the LLP evaluation on the full test split (ground truth against itself and against noise).

Usage: python benchmarks/bench_evaluate.py [--annotations-dir ../shared/llp] [--repeats 5]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from avvp.data.annotations import GT_AUDIO, GT_VISUAL, SPLIT_FILES
from avvp.data.labels import read_dense_labels, read_weak_labels
from avvp.evaluation.files import evaluate_files
from avvp.evaluation.metrics import llp_scores


def main() -> None:
    """Print the median wall time of the file-to-metrics evaluation and of the metric computation alone."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--annotations-dir", default="../shared/llp")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    split = f"{args.annotations_dir}/{SPLIT_FILES['test']}"
    gt_a, gt_v = f"{args.annotations_dir}/{GT_AUDIO}", f"{args.annotations_dir}/{GT_VISUAL}"

    times = []
    for _ in range(args.repeats):
        started = time.perf_counter()
        evaluate_files(split, gt_a, gt_v, gt_a, gt_v)
        times.append(time.perf_counter() - started)
    print(f"files -> metrics, 1200-clip test split: median {np.median(times):.3f} s over {args.repeats} runs")

    ids = read_weak_labels(split).video_ids
    audio, visual = read_dense_labels(gt_a, ids), read_dense_labels(gt_v, ids)
    rng = np.random.default_rng(0)
    noisy_a = audio ^ (rng.random(audio.shape) < 0.05)
    noisy_v = visual ^ (rng.random(visual.shape) < 0.05)
    times = []
    for _ in range(args.repeats):
        started = time.perf_counter()
        llp_scores(noisy_a, noisy_v, audio, visual)
        times.append(time.perf_counter() - started)
    print(f"metrics only (noisy predictions): median {np.median(times):.3f} s over {args.repeats} runs")


if __name__ == "__main__":
    main()
