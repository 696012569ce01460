"""Seconds per 10-s clip of each extractor on this machine, and where the time goes.

For each network (random weights; the cost does not depend on the weights' values) it times, per clip:
decoding + preprocessing (done by decoding workers or between batches), the network forward, and the share
of the total spent outside the forward (part ``table``). It times the frame-dump pipeline that LLP's original
scripts used (``ffmpeg -r 8`` to JPEG files, then PIL + torchvision transforms) against the in-memory
decoding (part ``dump``). And it runs the whole ``avvp extract`` command (random weights, all three kinds)
on a shard of copies of the clip, against the bare forward passes of the three networks on those clips'
input tensors in this process; the command's process start-up (interpreter and imports, timed on its own) is
subtracted (part ``shard``). With ``--compare-checkout DIR`` the command of that checkout runs too, in the
same run, and the two shards' features are compared.

Usage: ``python benchmarks/bench_extract.py [--clip CLIP] [--repeats 2] [--image-size 224 --clip-size 112]
[--shard-clips 4] [--parts table,dump,shard] [--compare-checkout DIR]`` (the LLP sample clip is used when
present, else a synthetic 320x240 29.97-fps clip).
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torchvision import transforms

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

from extract_helpers import LLP_SAMPLE, make_clip  # noqa: E402

from avvp.data.features import FeatureStore  # noqa: E402
from extractors.decoding import load_audio, load_frames, sample_positions  # noqa: E402
from extractors.networks import CHANNELS_LAST_MIN_SIZE, VIDEO, NetworkOptions, build_networks  # noqa: E402
from extractors.pipeline import run_network  # noqa: E402
from extractors.vggish import build_vggish, log_mel_examples  # noqa: E402
from extractors.visual import (  # noqa: E402
    build_r2plus1d,
    build_resnet152,
    r2plus1d_features,
    r2plus1d_inputs,
    resize_for_crop,
    resnet_features,
    resnet_inputs,
)

PARTS = ("table", "dump", "shard")
STARTUP_IMPORTS = "import avvp.cli, avvp.commands.extract, extractors.networks, extractors.pipeline"
"""What ``avvp extract`` imports before it does any work: its process start-up."""


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


def _env(checkout: Path) -> dict[str, str]:
    """The environment of a child process that runs the code of ``checkout``."""
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(checkout), os.environ.get("PYTHONPATH")])),
    }


def _run(command: list[str], checkout: Path) -> float:
    """Wall seconds of a child process running ``command`` with the code of ``checkout`` (it must succeed)."""
    start = time.perf_counter()
    done = subprocess.run(command, env=_env(checkout), capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"{' '.join(command)} failed:\n{done.stderr}")
    return seconds


def _cpu_seconds() -> tuple[float, float]:
    """CPU seconds used so far by the whole machine (``/proc/stat``) and by this process with its children."""
    with open("/proc/stat", encoding="ascii") as handle:
        fields = [int(v) for v in handle.readline().split()[1:]]
    machine = (sum(fields) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")  # all but idle and iowait
    own = [resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
    return machine, sum(usage.ru_utime + usage.ru_stime for usage in own)


class _Recorder(torch.nn.Module):
    """Stands in for a network to record the input tensor it would get."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Keep ``x``; return it."""
        self.input = x
        return x


def _network_input(features, rows: torch.Tensor, channels_last: bool) -> torch.Tensor:
    """The float tensor ``features`` (:func:`extractors.visual.resnet_features` or ``r2plus1d_features``)
    hands its network for the uint8 ``rows``."""
    recorder = _Recorder()
    features(recorder, rows, channels_last)
    return recorder.input


def bare_forwards(clip: Path, clips: int, image_size: int, clip_size: int) -> float:
    """Seconds of the three networks' forward passes alone on ``clips`` copies of ``clip``'s inputs, the
    very tensors ``avvp extract`` gives them (prepared beforehand, untimed), one clip per forward call (80
    frames, 10 snippets) and every clip's VGGish examples in one (random weights, eval and inference mode,
    the memory format extraction picks); model building is not timed, the first call's warm-up is."""
    cache = Path(tempfile.gettempdir())
    frames, waveform = load_frames(clip).frames, load_audio(clip).waveform
    resnet_cl, r2plus1d_cl = (size >= CHANNELS_LAST_MIN_SIZE for size in (image_size, clip_size))
    work = [
        (
            build_resnet152("random", 0, cache)[0],
            torch.channels_last if resnet_cl else torch.preserve_format,
            [_network_input(resnet_features, resnet_inputs(frames, image_size), resnet_cl)] * clips,
        ),
        (
            build_r2plus1d("random", 0, cache)[0],
            torch.channels_last_3d if r2plus1d_cl else torch.preserve_format,
            [_network_input(r2plus1d_features, r2plus1d_inputs(frames, clip_size), r2plus1d_cl)] * clips,
        ),
        (
            build_vggish("random", 0, pretrained=None)[0],
            torch.preserve_format,
            [log_mel_examples(torch.from_numpy(waveform)).repeat(clips, 1, 1)],
        ),
    ]
    seconds = 0.0
    with torch.inference_mode():
        for model, memory_format, inputs in work:
            model = model.to(memory_format=memory_format)
            for x in inputs:
                start = time.perf_counter()
                model(x)
                seconds += time.perf_counter() - start
    return seconds


def shard_against_bare(
    clip: Path, workdir: Path, clips: int, image_size: int, clip_size: int, checkouts: list[Path]
) -> None:
    """Print ``avvp extract`` of each checkout on ``clips`` copies of ``clip`` against the bare forward
    passes, whether the checkouts' features are identical, and the CPU time other processes took meanwhile
    (a busy machine makes the ratios meaningless)."""
    folder = workdir / "videos"
    folder.mkdir()
    for index in range(clips):
        shutil.copyfile(clip, folder / f"clip{index}{clip.suffix}")
    machine_start, own_start = _cpu_seconds()
    bare = bare_forwards(clip, clips, image_size, clip_size)
    print(f"\n{clips} clips of {clip.name}, all three kinds; bare forward passes: {bare:.1f} s")
    shards = []
    for index, checkout in enumerate(checkouts):
        startup = statistics.median(_run([sys.executable, "-c", STARTUP_IMPORTS], checkout) for _ in range(3))
        shards.append(workdir / f"shard{index}.h5")
        command = [sys.executable, "-m", "avvp.cli", "extract", "--videos", str(folder)]
        command += ["--output", str(shards[-1]), "--weights", "random", "--device", "cpu"]
        command += ["--image-size", str(image_size), "--clip-size", str(clip_size), "--no-progress"]
        extract = _run(command, checkout) - startup
        print(
            f"avvp extract of {checkout}: {extract:.1f} s (process start-up {startup:.1f} s subtracted); "
            f"ratio to the bare forward passes {extract / bare:.3f}"
        )
    if len(shards) > 1:
        with FeatureStore(shards[0]) as first, FeatureStore(shards[1]) as second:
            same = all(
                first.video_ids(kind) == second.video_ids(kind)
                and np.array_equal(first.dataset(kind)[:], second.dataset(kind)[:])
                for kind in first.kinds
            )
        print(f"features of the two checkouts identical: {same}")
    machine_end, own_end = _cpu_seconds()
    other = (machine_end - machine_start) - (own_end - own_start)
    print(
        f"CPU time of other processes meanwhile: {other:.1f} s (against {own_end - own_start:.1f} s of ours)"
    )


def main() -> None:
    """Run the benchmark and print a Markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clip", type=Path, default=None, help="10-s clip to time (default: the LLP sample)")
    parser.add_argument("--repeats", type=int, default=2, help="timed repetitions per measurement")
    parser.add_argument("--image-size", type=int, default=224, help="ResNet152 crop (224 as released)")
    parser.add_argument("--clip-size", type=int, default=112, help="R(2+1)D-18 frame size (112 as released)")
    parser.add_argument("--shard-clips", type=int, default=4, help="clips in the shard of part 'shard'")
    parser.add_argument(
        "--parts", default=",".join(PARTS), help=f"comma-separated parts to run, of {', '.join(PARTS)}"
    )
    parser.add_argument(
        "--compare-checkout",
        type=Path,
        default=None,
        help="another checkout (e.g. the code before a change) whose avvp extract part 'shard' times too",
    )
    args = parser.parse_args()
    parts = set(args.parts.split(","))
    if parts - set(PARTS):
        parser.error(f"--parts: unknown part(s) {sorted(parts - set(PARTS))}; choose from {', '.join(PARTS)}")

    workdir = Path(tempfile.mkdtemp(prefix="bench_extract_"))
    clip = args.clip or (LLP_SAMPLE if LLP_SAMPLE.is_file() else None)
    if clip is None:
        clip = make_clip(
            workdir / "synthetic.mp4", seconds=10.0, fps=29.97, size=(320, 240), audio_rate=44100
        )
    print(
        f"clip: {clip}; torch threads: {torch.get_num_threads()}; sizes: {args.image_size}/{args.clip_size}"
    )
    if "shard" in parts:
        checkouts = [REPO, *([args.compare_checkout.resolve()] if args.compare_checkout else [])]
        shard_against_bare(clip, workdir, args.shard_clips, args.image_size, args.clip_size, checkouts)
    if parts & {"table", "dump"}:
        kinds = ["resnet152", "r2plus1d", "vggish"]
        options = NetworkOptions(
            weights=dict.fromkeys(kinds, "random"), image_size=args.image_size, clip_size=args.clip_size
        )
        networks = build_networks(kinds, options, torch.device("cpu"))
    if "table" in parts:
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
    if "dump" in parts:
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
    shutil.rmtree(workdir)


if __name__ == "__main__":
    main()
