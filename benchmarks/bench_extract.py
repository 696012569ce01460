"""Seconds per 10-s clip of each extractor on this machine, the sweep of forward plans, and ``avvp extract``
against its networks at their fastest.

Parts (random weights everywhere; the cost does not depend on the weights' values):

- ``sweep``: every candidate forward plan (batch size x memory layout, float32) of each network on the
  clip's real input rows (:func:`extractors.calibration.time_plans`, the code of ``avvp extract
  --calibrate``), printed fastest first. The fastest plan of each network makes the *bare* baseline:
  forward passes only, inputs prepared beforehand, no decoding, no model building.
- ``shard``: ``avvp extract`` (default plans, all three kinds) on 1 and on N copies of the clip in child
  processes; ``(T_N - T_1) / (N - 1)`` is the command's time per clip with process start-up, imports and
  model building subtracted, and it includes decoding, preprocessing, the forwards and writing. It is
  printed against the bare baseline and against the bare baseline plus decoding + preprocessing (timed on
  its own, in this process). With ``--compare-checkout DIR`` the command of that checkout runs too and the
  two shards' features are compared.
- ``alternate``: in this process, ``--rounds`` rounds each timing the bare forwards at the fastest plans and
  then the shard extraction ``avvp extract`` runs (:func:`extractors.pipeline.extract_shard`: decoding,
  preprocessing, the default plans' forwards, writing; no start-up, no model building) on the clip; the
  ratio of each round and their median. Alternating in one process cancels the slow drift of a shared
  machine's speed, which the ``shard`` part's differences of whole runs amplify.
- ``table``: per network decoding + preprocessing and the forward of one clip under its default plan;
  ``dump``: the in-memory decoding against LLP's frame-dump pipeline (``ffmpeg -r 8`` to JPEG, then PIL).

Usage: ``python benchmarks/bench_extract.py [--clip CLIP] [--repeats 1] [--image-size 224 --clip-size 112]
[--shard-clips 4] [--rounds 5] [--parts sweep,shard,alternate,table,dump] [--compare-checkout DIR]`` (the
LLP sample clip is used when present, else a synthetic 320x240 29.97-fps clip). ``shard`` and ``alternate`` run the sweep too.
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
from collections.abc import Callable
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
from extractors.calibration import time_plans  # noqa: E402
from extractors.decoding import load_audio, load_frames, sample_positions  # noqa: E402
from extractors.forward_plan import ForwardPlan  # noqa: E402
from extractors.networks import VIDEO, NetworkOptions, build_networks  # noqa: E402
from extractors.pipeline import extract_shard, run_network  # noqa: E402
from extractors.visual import (  # noqa: E402
    resize_for_crop,
)

PARTS = ("sweep", "shard", "alternate", "table", "dump")
KINDS = ("resnet152", "r2plus1d", "vggish")


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


def sweep(networks, clip: Path, repeats: int) -> dict[str, ForwardPlan]:
    """Print every candidate plan's seconds per clip for each network on ``clip``'s input rows; return kind
    -> the fastest plan."""
    decoded = {VIDEO: load_frames(clip).frames, "audio": load_audio(clip).waveform}
    fastest = {}
    print("\n| network | forward plan (batch/layout/precision) | s per clip | vs its fastest |")
    print("|---|---|---|---|")
    for net in networks:
        timings = time_plans(net, net.prepare(decoded[net.source]), repeats=repeats)
        fastest[net.kind] = timings[0].plan
        for timing in timings:
            mark = " (default)" if timing.plan == net.plan else ""
            ratio = timing.seconds_per_clip / timings[0].seconds_per_clip
            print(
                f"| {net.kind} | {timing.plan} {net.spec.unit}{mark} | {timing.seconds_per_clip:.2f} | {ratio:.2f}x |"
            )
        net.with_plan(net.plan)  # the model back in its default layout
    return fastest


def bare_seconds(networks, clip: Path, plans: dict[str, ForwardPlan]) -> float:
    """Seconds per clip of the networks' forward passes alone under ``plans`` (kind -> plan) on ``clip``'s
    input rows (prepared untimed; one warm-up call each)."""
    decoded = {VIDEO: load_frames(clip).frames, "audio": load_audio(clip).waveform}
    total = 0.0
    for net in networks:
        (timing,) = time_plans(net, net.prepare(decoded[net.source]), [plans[net.kind]])
        total += timing.seconds_per_clip
        net.with_plan(net.plan)
    return total


def decode_seconds(networks, clip: Path, repeats: int) -> float:
    """Seconds per clip of decoding both streams and preparing every network's input rows."""

    def decode_and_prepare() -> None:
        frames, waveform = load_frames(clip).frames, load_audio(clip).waveform
        for net in networks:
            net.prepare(frames if net.source == VIDEO else waveform)

    return timed(decode_and_prepare, repeats)[0]


def alternate(networks, clip: Path, workdir: Path, plans: dict[str, ForwardPlan], rounds: int) -> None:
    """Print ``rounds`` alternating timings of the bare forwards under ``plans`` and of ``extract_shard`` of
    ``clip`` with the networks' default plans, each round's ratio and the median ratio."""
    print("\n| round | bare forwards (s) | extract_shard (s) | ratio |\n|---|---|---|---|")
    ratios = []
    named = workdir / f"{clip.stem[:11]}_0_10{clip.suffix}"  # an LLP filename: no warning about the id
    shutil.copyfile(clip, named)
    for index in range(rounds):
        bare = bare_seconds(networks, clip, plans)
        start = time.perf_counter()
        extract_shard([named], workdir / f"alternate{index}.h5", networks, workers=0, progress=False)
        command = time.perf_counter() - start
        ratios.append(command / bare)
        print(f"| {index + 1} | {bare:.2f} | {command:.2f} | {ratios[-1]:.3f} |")
    print(
        f"median ratio of extract_shard to the bare forwards at their fastest: {statistics.median(ratios):.3f}"
    )


def _extract(checkout: Path, folder: Path, output: Path, image_size: int, clip_size: int) -> float:
    """Wall seconds of ``avvp extract`` of ``checkout`` on the clips of ``folder``."""
    command = [sys.executable, "-m", "avvp.cli", "extract", "--videos", str(folder)]
    command += ["--output", str(output), "--weights", "random", "--device", "cpu", "--no-progress"]
    command += ["--image-size", str(image_size), "--clip-size", str(clip_size)]
    return _run(command, checkout)


def shard_against_bare(
    clip: Path,
    workdir: Path,
    clips: int,
    sizes: tuple[int, int],
    bare: Callable[[], float],
    decoding: float,
    checkouts: list[Path],
) -> None:
    """Print each checkout's ``avvp extract`` time per clip (from 1 and ``clips`` copies of ``clip``, so
    start-up and model building cancel) against the fastest bare forward passes per clip (``bare()``, timed
    before, between and after the commands, median) and against that plus ``decoding``; whether the
    checkouts' features are identical; the CPU time other processes took meanwhile (a busy machine makes
    the ratios noisy)."""
    folders = {}
    for count in (1, clips):
        folders[count] = workdir / f"videos{count}"
        folders[count].mkdir()
        for index in range(count):
            shutil.copyfile(clip, folders[count] / f"clip{index}{clip.suffix}")
    machine_start, own_start = _cpu_seconds()
    seconds, bare_timings = {}, [bare()]
    for count in (1, clips):  # the checkouts alternate, so a change of load hits both
        for index, checkout in enumerate(checkouts):
            shard = workdir / f"shard{index}-{count}.h5"
            seconds[index, count] = _extract(checkout, folders[count], shard, *sizes)
            bare_timings.append(bare())
    bare_median = statistics.median(bare_timings)
    print(
        f"\nbare forward passes at the fastest plans: {bare_median:.2f} s per clip (median of "
        f"{', '.join(f'{t:.2f}' for t in bare_timings)}); decoding + preprocessing {decoding:.2f} s per clip"
    )
    for index, checkout in enumerate(checkouts):
        per_clip = (seconds[index, clips] - seconds[index, 1]) / (clips - 1)
        print(
            f"avvp extract of {checkout}: {seconds[index, 1]:.1f} s for 1 clip, {seconds[index, clips]:.1f} s "
            f"for {clips}: "
            f"{per_clip:.2f} s per clip; ratio to the bare forwards {per_clip / bare_median:.3f}, to bare + "
            f"decoding {per_clip / (bare_median + decoding):.3f}"
        )
    if len(checkouts) > 1:
        shards = [workdir / f"shard{index}-{clips}.h5" for index in (0, 1)]
        with FeatureStore(shards[0]) as first, FeatureStore(shards[1]) as second:
            same = {
                kind: first.video_ids(kind) == second.video_ids(kind)
                and np.array_equal(first.dataset(kind)[:], second.dataset(kind)[:])
                for kind in first.kinds
            }
        print(f"features of the two checkouts identical (per kind): {same}")
    machine_end, own_end = _cpu_seconds()
    other = (machine_end - machine_start) - (own_end - own_start)
    print(
        f"CPU time of other processes meanwhile: {other:.1f} s (against {own_end - own_start:.1f} s of ours)"
    )


def main() -> None:
    """Run the benchmark and print a Markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clip", type=Path, default=None, help="10-s clip to time (default: the LLP sample)")
    parser.add_argument(
        "--repeats",
        type=int,
        default=1,
        help="timed repetitions per measurement (the fastest counts in the sweep)",
    )
    parser.add_argument("--image-size", type=int, default=224, help="ResNet152 crop (224 as released)")
    parser.add_argument("--clip-size", type=int, default=112, help="R(2+1)D-18 frame size (112 as released)")
    parser.add_argument("--shard-clips", type=int, default=4, help="clips in the shard of part 'shard'")
    parser.add_argument(
        "--parts", default=",".join(PARTS), help=f"comma-separated parts to run, of {', '.join(PARTS)}"
    )
    parser.add_argument("--rounds", type=int, default=5, help="rounds of the part alternate (default 5)")
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
    options = NetworkOptions(
        weights=dict.fromkeys(KINDS, "random"), image_size=args.image_size, clip_size=args.clip_size
    )
    networks = build_networks(KINDS, options, torch.device("cpu"))
    if parts & {"sweep", "shard", "alternate"}:
        fastest = sweep(networks, clip, args.repeats)
    if "shard" in parts:
        checkouts = [REPO, *([args.compare_checkout.resolve()] if args.compare_checkout else [])]
        sizes = (args.image_size, args.clip_size)
        decoding = decode_seconds(networks, clip, args.repeats)
        shard_against_bare(
            clip,
            workdir,
            args.shard_clips,
            sizes,
            lambda: bare_seconds(networks, clip, fastest),
            decoding,
            checkouts,
        )
    if "alternate" in parts:
        alternate(networks, clip, workdir, fastest, args.rounds)
    if "table" in parts:
        decode = {"video": lambda: load_frames(clip).frames, "audio": lambda: load_audio(clip).waveform}
        print("\n| extractor | decode + preprocess (s) | forward (s) | s per clip | share outside forward |")
        print("|---|---|---|---|---|")
        for net in networks:
            source = "video" if net.source == VIDEO else "audio"
            decode_s, raw = timed(decode[source], args.repeats)
            prepare_s, rows = timed(lambda net=net, raw=raw: net.prepare(raw), args.repeats)
            forward_s, _ = timed(lambda net=net, rows=rows: run_network(net, rows, 1), args.repeats)
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
