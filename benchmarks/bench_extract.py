"""Seconds per 10-s clip of each extractor on this machine, and where the time goes.

For each network (random weights; the cost does not depend on the weights' values) it times, per clip:
decoding + preprocessing (the work DataLoader workers do), the network forward, and the share of the
total spent outside the forward (part ``table``). It times the frame-dump pipeline that LLP's original
scripts used (``ffmpeg -r 8`` to JPEG files, then PIL + torchvision transforms) against the in-memory
decoding (part ``dump``). And it runs the whole ``avvp extract`` command (random weights, all three kinds)
on a shard of copies of the clip, against the bare forward passes of the three networks on tensors of the
same sizes in this process; the command's process start-up (interpreter and imports, timed on its own) is
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
from extractors.vggish import EXAMPLE_FRAMES, MEL_BANDS, build_vggish  # noqa: E402
from extractors.visual import SNIPPET_FRAMES, build_r2plus1d, build_resnet152, resize_for_crop  # noqa: E402

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


def _chunks(rows: int, step: int) -> list[int]:
    """Sizes of the chunks ``rows`` input rows are cut into, ``step`` at most each."""
    return [min(step, rows - start) for start in range(0, rows, step)]


def bare_forwards(clips: int, image_size: int, clip_size: int, chunk_rows: int) -> float:
    """Seconds of the three networks' forward passes alone on ``clips`` clips' worth of float tensors, in
    the chunks ``avvp extract`` uses (random weights, eval mode, inference mode, the memory format it picks
    for these sizes); model building is not timed, the first call's warm-up is."""
    cache = Path(tempfile.gettempdir())
    resnet = build_resnet152("random", 0, cache)[0]
    r2plus1d = build_r2plus1d("random", 0, cache)[0]
    vggish = build_vggish("random", 0, pretrained=None)[0]
    frames = [(rows, 3, image_size, image_size) for rows in _chunks(clips * 80, chunk_rows)]
    snippet = (3, SNIPPET_FRAMES, clip_size, clip_size)
    snippets = [(rows // SNIPPET_FRAMES, *snippet) for rows in _chunks(clips * 80, chunk_rows)]
    examples = [(rows, EXAMPLE_FRAMES, MEL_BANDS) for rows in _chunks(clips * 10, chunk_rows)]
    work = [
        (resnet, frames, torch.channels_last if image_size >= CHANNELS_LAST_MIN_SIZE else None),
        (r2plus1d, snippets, torch.channels_last_3d if clip_size >= CHANNELS_LAST_MIN_SIZE else None),
        (vggish, examples, None),
    ]
    generator = torch.Generator().manual_seed(0)
    seconds = 0.0
    with torch.inference_mode():
        for model, shapes, memory_format in work:
            if memory_format is not None:
                model = model.to(memory_format=memory_format)
            for shape in shapes:
                x = torch.randn(shape, generator=generator)
                if memory_format is not None:
                    x = x.contiguous(memory_format=memory_format)
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
    bare = bare_forwards(clips, image_size, clip_size, chunk_rows=80)
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
