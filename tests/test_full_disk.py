"""A full disk under every writing command: one line naming the file and "No space left on device", exit
code 1 (no traceback, no crash), no temporary file left, earlier outputs intact. A 2 MB tmpfs is the disk;
where the machine does not allow mounting one, the tests are skipped saying so."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from extract_helpers import make_clip
from fault_helpers import fill, last_line, run_avvp, tmpfs
from train_helpers import SyntheticSplits, make_splits

from avvp.data.features import FeatureStoreWriter
from avvp.feature_identity import sources_identity
from avvp.inference import FUSED_RULE
from avvp.models import ParserConfig, build_model
from avvp.training.checkpoints import native_payload, save_checkpoint
from extractors.networks import NetworkOptions, build_networks

EARLIER = b"an earlier output\n"
CLIPS = [f"{c * 11}_0_10" for c in "abc"]
TINY = ("--set", "model.d_model=16", "--set", "model.feedforward=16")


@dataclass(frozen=True)
class Inputs:
    """Good inputs on the ordinary disk (larger than the small one): a synthetic split with its store, two
    shards of ResNet features, released-style ``.npy`` folders, a checkpoint and a clip."""

    root: Path
    splits: SyntheticSplits
    shards: tuple[Path, Path]
    checkpoint: Path
    clip: Path


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> Inputs:
    root = tmp_path_factory.mktemp("inputs")
    splits = make_splits(root, num_train=8, num_val=4)
    rng = np.random.default_rng(0)
    shards = (root / "a.h5", root / "b.h5")
    for shard, prefix in zip(shards, "xy", strict=True):
        with FeatureStoreWriter(shard) as store:
            store.set_attrs("resnet152", {"extractor": "synthetic", "weights": "random-init(seed=0)"})
            for i in range(3):
                clip = f"{prefix * 10}{i}_0_10"
                store.add("resnet152", clip, rng.standard_normal((80, 2048)).astype(np.float32))
    for name, shape in {"vggish": (10, 128), "res152": (80, 2048), "r2plus1d": (10, 512)}.items():
        (root / name).mkdir()
        for clip in CLIPS:
            np.save(root / name / f"{clip[:11]}.npy", rng.standard_normal(shape).astype(np.float32))
    (root / "clips.csv").write_text("filename\tevent_labels\n" + "".join(f"{c}\tSpeech\n" for c in CLIPS))
    kinds = ("vggish", "resnet152", "r2plus1d")
    checkpoint = _checkpoint(root / "best.pt", sources_identity(dict.fromkeys(kinds, splits.features)))
    options = NetworkOptions(weights=dict.fromkeys(kinds, "random"), image_size=16, clip_size=16)
    networks = build_networks(list(kinds), options, torch.device("cpu"))
    _checkpoint(
        root / "parse.pt", {n.kind: {**n.record.identity(), "standardization": None} for n in networks}
    )
    clip = make_clip(root / "clip.mp4", seconds=3.0, fps=8, size=(32, 24))
    return Inputs(root, splits, shards, checkpoint, clip)


def _checkpoint(path: Path, features: dict) -> Path:
    """A native checkpoint of a small untrained parser recording ``features`` as its feature identity."""
    torch.manual_seed(0)
    model = build_model(ParserConfig(d_model=16, feedforward=16))
    decision = {"rule": FUSED_RULE, "segment": 0.5, "video": 0.5}
    save_checkpoint(path, native_payload(model, 1, {}, features, decision))
    return path


@pytest.fixture
def disk(tmp_path: Path) -> Iterator[Path]:
    """A fresh 2 MB tmpfs."""
    with tmpfs(tmp_path / "disk", "2M") as folder:
        yield folder


@dataclass(frozen=True)
class Writer:
    """A writing command: its arguments (``{i}``: the inputs' folder, ``{d}``: the small disk), the file
    the error names, the earlier output sitting at that path (or beside it) before the run, and the free
    bytes left on the disk (enough for some of the outputs, too little for all); ``unfinished``: files the
    command may leave that do not look finished (a run's ``config.yaml`` without its ``last.pt``)."""

    id: str
    argv: tuple[str, ...]
    named: str
    earlier: str
    leave: int = 0
    unfinished: tuple[str, ...] = ()


WRITERS = [
    Writer("merge-features", ("merge-features", "{i}/a.h5", "{i}/b.h5", "--output", "{d}/m.h5"),
           "{d}/m.h5", "m.h5", leave=1 << 20),
    Writer("standardize-features", ("standardize-features", "--input", "{i}/features.h5", "--split-csv",
                                    "{i}/annotations/AVVP_train.csv", "--output", "{d}/s.h5"),
           "{d}/s.h5", "s.h5", leave=1 << 20),
    Writer("import-features", ("import-features", "--clips", "{i}/clips.csv", "--output", "{d}/f.h5",
                               "--vggish", "{i}/vggish", "--res152", "{i}/res152", "--r2plus1d", "{i}/r2plus1d"),
           "{d}/f.h5", "f.h5", leave=1 << 20),
    Writer("extract", ("extract", "--videos", "{i}/clip.mp4", "--output", "{d}/e.h5", "--kinds", "resnet152",
                       "--image-size", "16", "--weights", "random", "--workers", "0", "--device", "cpu",
                       "--no-progress"),
           "{d}/e.h5", "e.h5", leave=64 << 10),
    Writer("evaluate", ("evaluate", "--annotations-dir", "{i}/annotations", "--split-csv",
                        "{i}/annotations/AVVP_val_pd.csv", "--pred-audio", "{i}/annotations/AVVP_eval_audio.csv",
                        "--pred-visual", "{i}/annotations/AVVP_eval_visual.csv", "--output", "{d}/m.json"),
           "{d}/m.json", "m.json"),
    Writer("train", ("train", "--config", "resources/configs/han.yaml", "--features", "{i}/features.h5",
                     "--annotations-dir", "{i}/annotations", "--output-dir", "{d}/run", "--device", "cpu",
                     "--set", "epochs=1", *TINY),
           "{d}/run/", "run/earlier.txt", leave=8 << 10, unfinished=("run/config.yaml",)),
    Writer("predict", ("predict", "--checkpoint", "{i}/best.pt", "--features", "{i}/features.h5",
                       "--split-csv", "{i}/annotations/AVVP_val_pd.csv", "--output-dir", "{d}/pred",
                       "--device", "cpu"),
           "{d}/pred/pred_", "pred/pred_audio.csv", leave=8 << 10),
    Writer("parse", ("parse", "{i}/clip.mp4", "--checkpoint", "{i}/parse.pt", "--output-dir", "{d}/out",
                     "--device", "cpu"),
           "{d}/out/clip.", "out/pred_audio.csv"),
]  # fmt: skip


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("writer", WRITERS, ids=lambda w: w.id)
def test_a_full_disk_is_one_line_naming_the_file(writer: Writer, inputs: Inputs, disk: Path) -> None:
    def place(text: str) -> str:
        return text.replace("{i}", str(inputs.root)).replace("{d}", str(disk))

    earlier = disk / writer.earlier
    earlier.parent.mkdir(parents=True, exist_ok=True)
    earlier.write_bytes(EARLIER)
    fill(disk, writer.leave)
    before = _files(disk)
    done = run_avvp(*(place(arg) for arg in writer.argv))
    line = last_line(done.stderr)
    assert done.returncode == 1, done.stderr[-3000:]
    assert line.startswith(f"avvp {writer.id}: error: {place(writer.named)}"), done.stderr[-3000:]
    assert line.endswith(": No space left on device"), line
    assert "Traceback" not in done.stderr and "Exception ignored" not in done.stderr, done.stderr[-3000:]
    after = _files(disk)
    for name in writer.unfinished:
        after.pop(name, None)
    assert after == before  # no temporary file, no partial output, the earlier one intact


def test_parse_into_a_new_folder_on_a_read_only_file_system(inputs: Inputs, tmp_path: Path) -> None:
    with tmpfs(tmp_path / "ro", "1M", read_only=True) as folder:
        out = folder / "new" / "out"
        done = run_avvp(
            "parse", str(inputs.clip), "--checkpoint", str(inputs.root / "parse.pt"), "--output-dir", str(out),
            "--device", "cpu",
        )  # fmt: skip
        assert done.returncode == 2, done.stderr[-3000:]
        assert last_line(done.stderr) == (
            f"avvp parse: error: {out}: cannot create the output folder (Read-only file system)"
        )
        assert "Traceback" not in done.stderr and not any(folder.iterdir())
