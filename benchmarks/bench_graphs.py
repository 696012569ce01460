"""Time ``avvp build-graphs`` on an LLP-sized store of random features.

Writes (or reuses) WORKDIR/features.h5: 11849 clips of ResNet152 (80x2048) and VGGish (10x128) features
stored in float16 to halve the disk (3.9 GB instead of 7.8 GB); each clip's seconds show one of a few
events, so the graphs have several components. Then runs the command once, in a fresh process, and prints
the total wall time and the read, compute and write times it logs. The store was just written or read, so
it is usually in the page cache: the read time is that of a warm cache, not of a cold disk.

Usage: python benchmarks/bench_graphs.py [--workdir /tmp/avvp_bench_graphs] [--clips 11849] [--clean]
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from avvp.data.features import FEATURE_SHAPES, FeatureStore, FeatureStoreWriter
from avvp.pretraining.graphs import GraphStore

LLP_CLIPS = 11849
EVENTS_PER_CLIP = 3
TIMING = re.compile(
    r"timing: read (?P<read>[\d.]+) s, compute (?P<compute>[\d.]+) s, write (?P<write>[\d.]+) s"
)


def clip_features(rng: np.random.Generator, bank: dict[str, np.ndarray], kind: str) -> np.ndarray:
    """One clip's ``kind`` features ``(T, D)`` float16: per second one of a few bank events, plus noise."""
    steps = FEATURE_SHAPES[kind][0]
    events = rng.choice(len(bank[kind]), size=EVENTS_PER_CLIP, replace=False)
    per_second = events[rng.integers(0, EVENTS_PER_CLIP, size=10)]
    noise = bank[f"{kind}_noise"][rng.integers(0, len(bank[f"{kind}_noise"]), size=steps)]
    return (np.repeat(bank[kind][per_second], steps // 10, axis=0) + noise).astype(np.float16)


def write_store(path: Path, clips: int, seed: int = 0) -> None:
    """Write ``clips`` clips of random ResNet152 and VGGish features to ``path`` (float16)."""
    rng = np.random.default_rng(seed)
    bank = {}
    for kind in ("resnet152", "vggish"):
        dim = FEATURE_SHAPES[kind][1]
        bank[kind] = rng.standard_normal((64, dim)).astype(np.float32)
        bank[f"{kind}_noise"] = 0.7 * rng.standard_normal((4096, dim)).astype(np.float32)
    with FeatureStoreWriter(path, dtype="float16") as store:
        for kind in ("resnet152", "vggish"):
            store.set_attrs(kind, {"extractor": kind, "weights": f"benchmark-random(seed={seed})"})
        for i in tqdm(range(clips), desc="writing the store", unit="clip"):
            vid = f"bench{i:06d}_0_10"
            for kind in ("resnet152", "vggish"):
                store.add(kind, vid, clip_features(rng, bank, kind))


def store_has(path: Path, clips: int) -> bool:
    """Whether ``path`` is a store with ``clips`` clips of both kinds."""
    if not path.is_file():
        return False
    with FeatureStore(path) as store:
        return all(len(store.video_ids(kind)) == clips for kind in ("resnet152", "vggish"))


def main() -> None:
    """Write or reuse the store, time one ``avvp build-graphs`` run and print the numbers."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/avvp_bench_graphs"))
    parser.add_argument("--clips", type=int, default=LLP_CLIPS)
    parser.add_argument("--clean", action="store_true", help="delete the store and the graphs afterwards")
    args = parser.parse_args()
    features, output = args.workdir / "features.h5", args.workdir / "graphs.h5"
    if store_has(features, args.clips):
        print(f"reusing {features}")
    else:
        started = time.perf_counter()
        write_store(features, args.clips)
        print(
            f"wrote {features} ({features.stat().st_size / 1e9:.2f} GB) in {time.perf_counter() - started:.0f} s"
        )

    command = [sys.executable, "-m", "avvp.cli", "build-graphs", "--features", str(features)]
    command += ["--output", str(output), "--visual-quantile", "0.8", "--audio-quantile", "0.8"]
    started = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, check=True)
    total = time.perf_counter() - started
    seconds = {key: float(value) for key, value in TIMING.search(result.stderr).groupdict().items()}
    attrs = GraphStore(output).attrs
    print(f"avvp build-graphs, {attrs['clips']} clips: {total:.1f} s wall in total (process start included)")
    for key, value in seconds.items():
        print(f"  {key:8s} {value:6.2f} s  ({100 * value / total:4.1f}% of the total)")
    other = total - sum(seconds.values())
    print(f"  {'other':8s} {other:6.2f} s  (interpreter start, imports, clip selection, exit)")
    print(
        f"thresholds: visual {attrs['visual_threshold']:.4f}, audio {attrs['audio_threshold']:.4f}; "
        f"{attrs['components_mean']:.2f} components per clip; "
        f"{100 * attrs['positive_pair_share']:.1f}% positive pairs"
    )
    if args.clean:
        features.unlink()
        output.unlink()


if __name__ == "__main__":
    main()
