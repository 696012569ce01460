"""Seconds per 10-s clip of each extractor on this machine, and where the time goes.

For each network (random weights; the cost does not depend on the weights' values) it times, per clip:
decoding + preprocessing (the work DataLoader workers do), the network forward, and the share of the
total spent outside the forward. It also times the frame-dump pipeline that LLP's original scripts used
(``ffmpeg -r 8`` to JPEG files, then PIL + torchvision transforms) against the in-memory decoding, and
an end-to-end ``extract_shard`` run with decoding workers overlapping the networks.

Usage: ``python benchmarks/bench_extract.py [--clip CLIP] [--repeats 2] [--image-size 224 --clip-size 112]``
(the LLP sample clip is used when present, else a synthetic 320x240 29.97-fps clip).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from PIL import Image
from torchvision import transforms

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

from extract_helpers import LLP_SAMPLE, make_clip  # noqa: E402

from extractors.decoding import load_audio, load_frames, sample_positions  # noqa: E402
from extractors.networks import VIDEO, NetworkOptions, build_networks  # noqa: E402
from extractors.pipeline import extract_shard, run_network  # noqa: E402
from extractors.visual import resize_for_crop  # noqa: E402


def timed(function, repeats: int) -> tuple[float, object]:
    """Median wall seconds of ``function()`` over ``repeats`` calls, and its last result."""
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = function()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def frame_dump_pipeline(clip: Path, crop: int) -> torch.Tensor:
    """LLP's original way: ``ffmpeg -r 8`` to JPEG files, pick 80, PIL + transforms -> [80, 3, crop, crop]."""
    preprocess = transforms.Compose(
        [transforms.Resize(resize_for_crop(crop)), transforms.CenterCrop(crop), transforms.PILToTensor()]
    )
    with tempfile.TemporaryDirectory() as directory:
        pattern = str(Path(directory) / "%06d.jpg")
        subprocess.run(["ffmpeg", "-loglevel", "error", "-i", str(clip), "-r", "8", pattern], check=True)
        files = sorted(Path(directory).glob("*.jpg"))
        return torch.stack(
            [preprocess(Image.open(files[p]).convert("RGB")) for p in sample_positions(len(files))]
        )


def main() -> None:
    """Run the benchmark and print a Markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clip", type=Path, default=None, help="10-s clip to time (default: the LLP sample)")
    parser.add_argument("--repeats", type=int, default=2, help="timed repetitions per measurement")
    parser.add_argument("--image-size", type=int, default=224, help="ResNet152 crop (224 as released)")
    parser.add_argument("--clip-size", type=int, default=112, help="R(2+1)D-18 frame size (112 as released)")
    parser.add_argument("--shard-clips", type=int, default=4, help="clips in the end-to-end run (0: skip it)")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="bench_extract_"))
    clip = args.clip or (LLP_SAMPLE if LLP_SAMPLE.is_file() else None)
    if clip is None:
        clip = make_clip(
            workdir / "synthetic.mp4", seconds=10.0, fps=29.97, size=(320, 240), audio_rate=44100
        )
    print(
        f"clip: {clip}; torch threads: {torch.get_num_threads()}; sizes: {args.image_size}/{args.clip_size}"
    )

    kinds = ["resnet152", "r2plus1d", "vggish"]
    options = NetworkOptions(
        weights=dict.fromkeys(kinds, "random"), image_size=args.image_size, clip_size=args.clip_size
    )
    networks = build_networks(kinds, options, torch.device("cpu"))
    decode = {"video": lambda: load_frames(clip).frames, "audio": lambda: load_audio(clip).waveform}
    print("\n| extractor | decode + preprocess (s) | forward (s) | s per clip | share outside forward |")
    print("|---|---|---|---|---|")
    for net in networks:
        source = "video" if net.source == VIDEO else "audio"
        decode_s, raw = timed(decode[source], args.repeats)
        prepare_s, rows = timed(lambda net=net, raw=raw: net.prepare(raw), args.repeats)
        forward_s, _ = timed(lambda net=net, rows=rows: run_network(net, rows, 1, 80), args.repeats)
        outside = decode_s + prepare_s
        total = outside + forward_s
        print(f"| {net.kind} | {outside:.3f} | {forward_s:.3f} | {total:.2f} | {outside / total:.1%} |")

    resnet = networks[0]
    memory_s, _ = timed(lambda: resnet.prepare(load_frames(clip).frames), args.repeats)
    if shutil.which("ffmpeg"):
        dump_s, _ = timed(lambda: frame_dump_pipeline(clip, args.image_size), args.repeats)
        print(
            f"\nResNet input of one clip: in-memory {memory_s:.3f} s, ffmpeg JPEG dump + PIL {dump_s:.3f} s"
        )
    else:
        print(
            f"\nResNet input of one clip: in-memory {memory_s:.3f} s (ffmpeg absent: no frame-dump comparison)"
        )

    if args.shard_clips:
        videos = []
        for index in range(args.shard_clips):
            copy = workdir / f"clip{index}{clip.suffix}"
            shutil.copyfile(clip, copy)
            videos.append(copy)
        for workers in (0, 1):
            start = time.perf_counter()
            extract_shard(videos, workdir / f"shard{workers}.h5", networks, workers=workers, progress=False)
            per_clip = (time.perf_counter() - start) / len(videos)
            print(f"end to end, all three kinds, {workers} decoding worker(s): {per_clip:.2f} s per clip")
    shutil.rmtree(workdir)


if __name__ == "__main__":
    main()
