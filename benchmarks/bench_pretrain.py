"""Benchmark: grounding graphs and one AVG pretraining epoch on LLP-sized random features.

Writes (or reuses in ``--workdir``) a store of LLP-shaped random features for 11849 clips (the
``bench_train.py`` dataset: 10000 training, 649 validation, 1200 test clips, float32), then times
``avvp build-graphs`` (quantile thresholds 0.9) and ``avvp pretrain`` for one epoch with
resources/configs/pretraining/avg.yaml (all clips, batch 128). Results are printed and written as JSON::

    python benchmarks/bench_pretrain.py --workdir /tmp/avvp-bench-llp --output bench_pretrain.json [--threads 1]
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import torch
from bench_train import write_dataset, write_results  # the script's folder is on sys.path

from avvp.cli import main as avvp_main

CONFIG = Path(__file__).resolve().parents[1] / "resources" / "configs" / "pretraining" / "avg.yaml"


def timed(argv: list[str]) -> float:
    """Run one ``avvp`` command; return its wall time in seconds (raises when it fails)."""
    started = time.perf_counter()
    if avvp_main(argv) != 0:
        raise SystemExit(f"avvp {argv[0]} failed")
    return time.perf_counter() - started


def main() -> int:
    """Parse options, build the dataset if needed, time graphs and one pretraining epoch, write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workdir", type=Path, required=True, help="scratch directory (about 8 GB)")
    parser.add_argument("--output", type=Path, required=True, help="JSON file for the results")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or auto (default cpu)")
    parser.add_argument("--threads", type=int, help="CPU threads for torch (default: torch's own choice)")
    args = parser.parse_args()

    features = args.workdir / "features.h5"
    if not features.is_file():
        write_dataset(args.workdir, {"train": 10000, "val": 649, "test": 1200}, seed=0)
    graphs = args.workdir / "graphs.h5"
    graph_seconds = timed(
        ["build-graphs", "--features", str(features), "--output", str(graphs),
         "--visual-quantile", "0.9", "--audio-quantile", "0.9"]
    )  # fmt: skip
    threads = ["--threads", str(args.threads)] if args.threads else []
    pretrain_seconds = timed(
        ["pretrain", "--config", str(CONFIG), "--features", str(features), "--graphs", str(graphs),
         "--output-dir", str(args.workdir / "pretrain"), "--epochs", "1", "--device", args.device,
         "--overwrite", *threads]
    )  # fmt: skip
    record = json.loads((args.workdir / "pretrain" / "history.jsonl").read_text().splitlines()[-1])
    results = {
        "clips": 11849,
        "device": args.device,
        "torch_threads": torch.get_num_threads(),
        "machine": {
            "processor": platform.processor() or platform.machine(),
            "python": platform.python_version(),
        },
        "build_graphs_seconds": graph_seconds,
        "pretrain_command_seconds_including_loading": pretrain_seconds,
        "pretrain_epoch_seconds": record["seconds"],
        "pretrain_epoch_steps": record["steps"],
        "pretrain_epoch_waiting_for_batches_seconds": record["data_seconds"],
    }
    write_results(args.output, results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
