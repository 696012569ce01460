"""Seconds per 10-s clip of the teacher kinds (CLIP ViT-L/14 ``clip``; fused HTS-AT CLAP ``clap`` and
``clap_segments``) at their real sizes, random weights (the cost does not depend on the weights' values).

Per clip it times decoding + preprocessing (frames and 48-kHz audio, CLIP's resize, CLAP's log-mels) and each
network's forward passes, in float32 on the CPU, at a few rows per forward call (the batch of a forward
plan, ``avvp extract --forward``); the prompt embeddings (once per run) and model building are timed apart.
Runs alternate between the batch sizes and are repeated, as the machine may be shared.

Usage: ``python benchmarks/bench_teachers.py [--clip CLIP] [--repeats 2] [--rows 10,20]``
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from extract_helpers import LLP_SAMPLE, make_clip

from extractors import clap, clip
from extractors.decoding import load_audio, load_frames


def timed(function, repeats: int) -> tuple[float, object]:
    """Median wall seconds of ``function()`` over ``repeats`` calls, and its last result."""
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = function()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def forward_in_chunks(function, model, rows: torch.Tensor, chunk: int) -> None:
    """``function(model, rows[i:i + chunk])`` over all rows, in inference mode."""
    with torch.inference_mode():
        for start in range(0, len(rows), chunk):
            function(model, rows[start : start + chunk])


def main() -> None:
    """Print the per-clip costs."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--clip", type=Path, default=LLP_SAMPLE if LLP_SAMPLE.is_file() else None)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--rows", default="10,20", help="rows per forward call to compare (comma-separated)")
    args = parser.parse_args()
    source = args.clip
    if source is None:
        source = make_clip(
            Path(tempfile.mkdtemp()) / "synthetic.mp4", seconds=10.0, fps=29.97, size=(320, 240)
        )
    print(f"clip {source}; torch threads {torch.get_num_threads()}")

    build_clip, clip_model = timed(lambda: clip.load_clip(clip.DEFAULT_MODEL, "random", 0), 1)
    build_clap, clap_model = timed(lambda: clap.load_clap(clap.DEFAULT_MODEL, "random", 0), 1)
    print(f"build random-init ViT-L/14 CLIP {build_clip:.1f} s, fused HTS-AT CLAP {build_clap:.1f} s")
    text_clip, _ = timed(lambda: clip.prompt_embeddings(clip_model), 1)
    text_clap, _ = timed(lambda: clap.prompt_embeddings(clap_model), 1)
    print(f"prompt embeddings (once per run): CLIP {text_clip:.2f} s, CLAP {text_clap:.2f} s")

    size = clip.image_size(clip_model)
    decode_video, frames = timed(lambda: load_frames(source).frames, args.repeats)
    decode_audio, waveform = timed(lambda: load_audio(source, rate=clap.SAMPLE_RATE).waveform, args.repeats)
    prep_clip, images = timed(lambda: clip.clip_inputs(frames, size), args.repeats)
    prep_map, map_mels = timed(lambda: clap.map_inputs(waveform), args.repeats)
    prep_segments, segment_mels = timed(lambda: clap.segment_inputs(waveform), args.repeats)
    print(
        f"decode frames {decode_video:.2f} s, audio at 48 kHz {decode_audio:.2f} s; preprocess CLIP "
        f"{prep_clip:.3f} s, CLAP map {prep_map:.3f} s, CLAP segments {prep_segments:.3f} s (per clip)"
    )
    two_clips = {"clip": images.repeat(2, 1, 1, 1), "segments": segment_mels.repeat(2, 1, 1)}
    results: dict[tuple[str, int], list[float]] = {}
    for _ in range(args.repeats):
        for rows in (int(r) for r in args.rows.split(",")):
            work = {
                "clip": (clip.clip_features, clip_model.model, two_clips["clip"]),
                "clap_segments": (clap.segment_features, clap_model.model, two_clips["segments"]),
                "clap": (clap.map_features, clap_model.model, map_mels.repeat(2, 1, 1)),
            }
            for kind, (function, model, inputs) in work.items():
                start = time.perf_counter()
                forward_in_chunks(function, model, inputs, rows)
                results.setdefault((kind, rows), []).append((time.perf_counter() - start) / 2)
    for (kind, rows), times in results.items():
        print(f"{kind}: forward {statistics.median(times):.2f} s per clip at {rows} rows per call")


if __name__ == "__main__":
    main()
