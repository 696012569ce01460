"""Bad input over the commands, as a new user would give it: one parametrised table.

Each case runs one ``avvp`` command on tiny synthetic inputs in its own folder, where earlier outputs
already sit at the paths the command would write. It asserts the exit code, that the last line of the
error output names the file (or option) and the problem (and that no traceback was printed), and that
every file of the folder is byte-identical afterwards: nothing written, nothing replaced, nothing removed.
"""

from __future__ import annotations

import json
import shutil
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from extract_helpers import make_clip
from train_helpers import SyntheticSplits, make_splits, one_torch_thread  # noqa: F401

from avvp.cli import main
from avvp.data.annotations import ANNOTATION_ROWS
from avvp.feature_identity import sources_identity
from avvp.inference import FUSED_RULE
from avvp.models import ParserConfig, build_model
from avvp.training.checkpoints import native_payload, save_checkpoint
from extractors.networks import NetworkOptions, build_networks

EARLIER = b"an earlier output\n"
LATIN1 = "filename\tevent_labels\naaaaaaaaaaa_0_10\tDog\nbbbbbbbbbbb_0_10\tCaf\xe9\n".encode("latin-1")
CLIP = "aaaaaaaaaaa_0_10"
EXTRACT = ["--weights", "random", "--workers", "0", "--device", "cpu", "--no-progress"]
EXTRACT_R2PLUS1D = ["--kinds", "r2plus1d", "--clip-size", "16", *EXTRACT]
THRESHOLDS = ["--visual-threshold", "0.5", "--audio-threshold", "0.5"]
PARSE_KINDS = ["vggish", "resnet152", "r2plus1d"]


@dataclass(frozen=True)
class Workspace:
    """Shared good inputs (never modified by a case): a synthetic feature store with its annotations, a
    checkpoint trained on nothing but recording that store's identity, its grounding graphs, a tiny clip,
    and a checkpoint recording the identity of random-init networks at 16 px (for parse)."""

    root: Path
    splits: SyntheticSplits
    checkpoint: Path
    graphs: Path
    clip: Path
    parse_checkpoint: Path


def _checkpoint(path: Path, features: dict) -> Path:
    """A native checkpoint of a small untrained parser recording ``features`` as its feature identity."""
    torch.manual_seed(0)
    model = build_model(ParserConfig(d_model=16, feedforward=16))
    decision = {"rule": FUSED_RULE, "segment": 0.5, "video": 0.5}
    save_checkpoint(path, native_payload(model, 1, {}, features, decision))
    return path


@pytest.fixture(scope="module")
def ws(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    root = tmp_path_factory.mktemp("workspace")
    splits = make_splits(root, num_train=6, num_val=4, seed=3)
    identity = sources_identity(dict.fromkeys(("vggish", "resnet152", "r2plus1d"), splits.features))
    checkpoint = _checkpoint(root / "best.pt", identity)
    graphs = root / "graphs.h5"
    assert (
        main(["build-graphs", "--features", str(splits.features), "--output", str(graphs), *THRESHOLDS]) == 0
    )
    clip = make_clip(root / "clip.mp4", seconds=3.0, fps=8, size=(32, 24))
    options = NetworkOptions(weights=dict.fromkeys(PARSE_KINDS, "random"), image_size=16, clip_size=16)
    networks = build_networks(PARSE_KINDS, options, torch.device("cpu"))
    recorded = {n.kind: {**n.record.identity(), "standardization": None} for n in networks}
    recorded["resnet152"]["fps"] = 4
    parse_checkpoint = _checkpoint(root / "parse.pt", recorded)
    return Workspace(root, splits, checkpoint, graphs, clip, parse_checkpoint)


Setup = Callable[[Path, Workspace], None]


@dataclass(frozen=True)
class Case:
    """One bad input: the command line and the expected last error line (``{ws}``: the workspace, ``{t}``:
    the case's folder, ``{ann}``: the annotations, ``{features}``: the store, ``{ckpt}``: the checkpoint),
    the exit code, what ``setup`` writes into the case's folder first, and the paths (in the case's folder)
    that hold earlier outputs before the run."""

    id: str
    argv: tuple[str, ...]
    message: str
    setup: Setup | None = None
    earlier: tuple[str, ...] = ()
    code: int = 2


def _noise_ratios(visual: float) -> Setup:
    """Setup: ``r.npz``, a noise-ratio file whose visual ratios are all ``visual``."""

    def setup(t: Path, ws: Workspace) -> None:
        np.savez(t / "r.npz", audio=np.zeros(25), visual=np.full(25, visual))

    return setup


def _write(name: str, data: str | bytes) -> Setup:
    """Setup: write ``data`` to ``name`` in the case's folder."""

    def setup(t: Path, ws: Workspace) -> None:
        path = t / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data if isinstance(data, bytes) else data.encode())

    return setup


def _both(*setups: Setup) -> Setup:
    def setup(t: Path, ws: Workspace) -> None:
        for one in setups:
            one(t, ws)

    return setup


def _clip_copy(name: str) -> Setup:
    """Setup: the workspace's good clip copied to ``name``."""

    def setup(t: Path, ws: Workspace) -> None:
        (t / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ws.clip, t / name)

    return setup


def _damaged_checkpoint(part: str) -> Setup:
    """Setup: ``c.pt``, the workspace's checkpoint with 64 bytes flipped inside its first weight tensor
    (``part`` "flipped") or cut to its first half (``part`` "truncated")."""

    def setup(t: Path, ws: Workspace) -> None:
        data = bytearray(ws.checkpoint.read_bytes())
        if part == "truncated":
            data = data[: len(data) // 2]
        else:
            with zipfile.ZipFile(ws.checkpoint) as container:
                member = next(
                    i for i in container.infolist() if "/data/" in i.filename and i.file_size >= 128
                )
            start = member.header_offset + 30 + len(member.filename) + len(member.extra)
            data[start : start + 64] = bytes(b ^ 0xFF for b in data[start : start + 64])
        (t / "c.pt").write_bytes(bytes(data))

    return setup


def _truncated_clip(t: Path, ws: Workspace) -> None:
    whole = make_clip(t / "whole.mp4", seconds=3.0, fps=8, size=(32, 24)).read_bytes()
    (t / "whole.mp4").unlink()
    (t / "clips").mkdir()
    (t / "clips" / f"{CLIP}.mp4").write_bytes(whole[: len(whole) // 2])


def _silent_clip(t: Path, ws: Workspace) -> None:
    (t / "clips").mkdir()
    make_clip(t / "clips" / f"{CLIP}.mp4", seconds=3.0, fps=8, size=(32, 24), audio=False)


def _store_copy(name: str, change: Callable[[h5py.File], None]) -> Setup:
    """Setup: the workspace's store copied to ``name``, then changed in place by ``change``."""

    def setup(t: Path, ws: Workspace) -> None:
        shutil.copy(ws.splits.features, t / name)
        with h5py.File(t / name, "r+") as handle:
            change(handle)

    return setup


def _set_value(value: float) -> Callable[[h5py.File], None]:
    def change(handle: h5py.File) -> None:
        handle["r2plus1d/features"][3, 2, 7] = value

    return change


def _replace_vggish(
    features: np.ndarray | None = None, drop_last_id: bool = False
) -> Callable[[h5py.File], None]:
    """Rewrite the vggish group with other ``features`` or one video id fewer."""

    def change(handle: h5py.File) -> None:
        group = handle["vggish"]
        if features is not None:
            del group["features"]
            group.create_dataset("features", data=features[: len(group["video_id"])])
        if drop_last_id:
            ids = group["video_id"][:-1]
            del group["video_id"]
            group.create_dataset("video_id", data=ids, dtype=h5py.string_dtype("utf-8"))

    return change


def _duplicate_first_id(handle: h5py.File) -> None:
    ids = handle["vggish/video_id"][:]
    ids[1] = ids[0]
    handle["vggish/video_id"][:] = ids


def _annotations_plus(line: str) -> Setup:
    """Setup: a copy of the workspace annotations with ``line`` appended to the training split."""

    def setup(t: Path, ws: Workspace) -> None:
        shutil.copytree(ws.splits.annotations_dir, t / "ann")
        with (t / "ann" / "AVVP_train.csv").open("a", encoding="utf-8") as handle:
            handle.write(line)

    return setup


def _split_plus(line: str) -> Setup:
    """Setup: ``split.csv``, the workspace's validation split with ``line`` appended."""

    def setup(t: Path, ws: Workspace) -> None:
        text = (ws.splits.annotations_dir / "AVVP_val_pd.csv").read_text(encoding="utf-8")
        (t / "split.csv").write_text(text + line, encoding="utf-8")

    return setup


def _checkpoint_change(change: Callable[[dict], None]) -> Setup:
    """Setup: ``bad.pt``, the workspace checkpoint with its payload changed by ``change``."""

    def setup(t: Path, ws: Workspace) -> None:
        payload = torch.load(ws.checkpoint, weights_only=True)
        change(payload)
        torch.save(payload, t / "bad.pt")

    return setup


def _nan_weight(payload: dict) -> None:
    payload["state_dict"]["pooling.classifier.weight"][0, 0] = float("nan")


def _wider_model(payload: dict) -> None:
    payload["model"]["d_model"] = 64


def _standardised_vggish(payload: dict) -> None:
    statistics = {"mean": torch.zeros(128, dtype=torch.float64), "std": torch.ones(128, dtype=torch.float64)}
    payload["features"]["vggish"]["standardization"] = {**statistics, "epsilon": 1e-6}


def _other_weights(handle: h5py.File) -> None:
    handle["resnet152"].attrs["weights"] = json.dumps("torchvision:ResNet152_Weights.IMAGENET1K_V1")


def _other_weights_and_clips(handle: h5py.File) -> None:
    _other_weights(handle)
    for kind in ("vggish", "resnet152", "r2plus1d"):
        handle[f"{kind}/video_id"][:] = [
            f"zz{i:09d}_0_10".encode() for i in range(len(handle[f"{kind}/video_id"]))
        ]


def _standardized(t: Path, ws: Workspace) -> None:
    argv = ["standardize-features", "--input", str(ws.splits.features), "--output", str(t / "z.h5")]
    assert main([*argv, "--split-csv", str(ws.splits.annotations_dir / "AVVP_train.csv")]) == 0


def _annotations_copy_short(t: Path, ws: Workspace) -> None:
    """Setup: a copy of the real LLP annotations with three rows missing from the validation split."""
    llp = Path(__file__).resolve().parents[2] / "shared" / "llp"
    if not (llp / "AVVP_val_pd.csv").is_file():
        pytest.skip(f"real LLP annotations not found at {llp}")
    (t / "src").mkdir()
    for name in ANNOTATION_ROWS:
        shutil.copy(llp / name, t / "src" / name)
    lines = (t / "src" / "AVVP_val_pd.csv").read_text(encoding="utf-8").splitlines()[:-3]
    (t / "src" / "AVVP_val_pd.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")


def _released_features(t: Path, ws: Workspace) -> None:
    (t / "clips.csv").write_text(f"filename\tevent_labels\n{CLIP}\tSpeech\n", encoding="utf-8")


def _split_files(val_clip: str) -> Setup:
    """Setup: annotations ``ann/`` whose three splits hold one clip each, and a store ``f.h5`` with the
    train and test clips (the validation clip is ``val_clip``)."""

    def setup(t: Path, ws: Workspace) -> None:
        (t / "ann").mkdir()
        for name, clip in (("AVVP_train.csv", "aaaaaaaaaaa"), ("AVVP_val_pd.csv", val_clip[:11])):
            (t / "ann" / name).write_text(f"filename\tevent_labels\n{clip}_0_10\tDog\n", encoding="utf-8")
        (t / "ann" / "AVVP_test_pd.csv").write_text("filename\tevent_labels\nccccccccccc_0_10\tDog\n")
        with h5py.File(ws.splits.features) as source, h5py.File(t / "f.h5", "w") as target:
            for kind in ("vggish", "resnet152", "r2plus1d"):
                group = target.create_group(kind)
                group.create_dataset("features", data=source[kind]["features"][:2])
                ids = np.array(["aaaaaaaaaaa_0_10", "ccccccccccc_0_10"], dtype=object)
                group.create_dataset("video_id", data=ids, dtype=h5py.string_dtype("utf-8"))
                for key, value in source[kind].attrs.items():
                    group.attrs[key] = value

    return setup


def _no_audio_for_train_clips(t: Path, ws: Workspace) -> None:
    shutil.copy(ws.splits.features, t / "f.h5")
    with h5py.File(t / "f.h5", "r+") as handle:
        keep = [i for i, v in enumerate(handle["vggish/video_id"][:]) if not v.decode().startswith("tr")]
        features, ids = handle["vggish/features"][keep], handle["vggish/video_id"][keep]
        del handle["vggish/features"], handle["vggish/video_id"]
        handle["vggish"].create_dataset("features", data=features)
        handle["vggish"].create_dataset("video_id", data=ids, dtype=h5py.string_dtype("utf-8"))


GOOD_EVENTS = f"filename\tonset\toffset\tevent_labels\n{CLIP}\t0\t4\tDog\n"
EVENTS_HEADER = "filename\tonset\toffset\tevent_labels\n"
ONE_CLIP = f"filename\tevent_labels\n{CLIP}\tDog\n"
EVALUATE_FILES = _both(_write("split.csv", ONE_CLIP), _write("gt.csv", GOOD_EVENTS))
TRAIN_SET = (
    *("--config", "resources/configs/han.yaml", "--device", "cpu"),
    *("--set", "model.d_model=16", "--set", "model.feedforward=16"),
)
PRETRAIN = ("pretrain", "--config", "resources/configs/pretraining/avg.yaml", "--features", "{features}")
NOT_EXTRACTED = (
    "{t}/shard.h5: none of the 1 clip(s) could be extracted, so nothing was written and any earlier "
)
NOT_EXTRACTED += f"shard.h5 is left as it was: {CLIP}: "
SHARD = ("shard.h5", "shard.failures.tsv")


def extract(videos: str, *options: str) -> tuple[str, ...]:
    """``avvp extract`` of ``videos`` into the case's ``shard.h5`` with random weights (R(2+1)D-18 at 16 px
    unless ``options`` are given; they come last, so they win)."""
    options = options or ("--kinds", "r2plus1d", "--clip-size", "16")
    return ("extract", "--videos", videos, "--output", "{t}/shard.h5", *EXTRACT, *options)


def evaluate(pred_audio: str, *options: str) -> tuple[str, ...]:
    """``avvp evaluate`` of ``pred_audio`` against the case's ``split.csv`` and ``gt.csv``."""
    truth = ("--split-csv", "{t}/split.csv", "--gt-audio", "{t}/gt.csv", "--gt-visual", "{t}/gt.csv")
    predictions = ("--pred-audio", pred_audio, "--pred-visual", "{t}/gt.csv")
    return ("evaluate", *truth, *predictions, "--output", "{t}/m.json", *options)


def train(features: str = "{features}", annotations: str = "{ann}", *options: str) -> tuple[str, ...]:
    """``avvp train`` of the HAN recipe with a tiny model into the case's ``run/``."""
    inputs = ("--features", features, "--annotations-dir", annotations)
    return ("train", *inputs, "--output-dir", "{t}/run", *TRAIN_SET, *options)


def predict(
    checkpoint: str = "{ckpt}", features: str = "{features}", split: str = "{ann}/AVVP_val_pd.csv"
) -> tuple[str, ...]:
    """``avvp predict`` into the case's ``pred/``."""
    inputs = ("--checkpoint", checkpoint, "--features", features, "--split-csv", split)
    return ("predict", *inputs, "--output-dir", "{t}/pred", "--device", "cpu")


def build_graphs(features: str, *options: str) -> tuple[str, ...]:
    """``avvp build-graphs`` of ``features`` into the case's ``graphs.h5``."""
    return ("build-graphs", "--features", features, "--output", "{t}/graphs.h5", *(options or THRESHOLDS))


def _unchanged(handle: h5py.File) -> None:
    """A store change that changes nothing (a plain copy)."""


def _vggish_of_other_clips(handle: h5py.File) -> None:
    ids = handle["vggish/video_id"]
    ids[:] = [f"zz{i:09d}_0_10".encode() for i in range(len(ids))]


GRAPH_OPTIONS = {
    "threshold-above-1": (("--visual-threshold", "1.5", "--audio-threshold", "0.5"), "visual threshold 1.5"),
    "threshold-below-minus-1": (
        ("--visual-threshold", "0.5", "--audio-threshold", "-1.01"),
        "audio threshold -1.01",
    ),
    "threshold-nan": (("--visual-threshold", "nan", "--audio-threshold", "0.5"), "visual threshold nan"),
}
GRAPH_QUANTILES = {
    "quantile-0": (
        ("--visual-quantile", "0", "--audio-threshold", "0.5"),
        "visual quantile 0.0 is outside (0, 1)",
    ),
    "quantile-1": (
        ("--visual-threshold", "0.5", "--audio-quantile", "1"),
        "audio quantile 1.0 is outside (0, 1)",
    ),
}

CASES = [
    # avvp extract: a shard whose clips all fail replaces no earlier shard (and its manifest)
    Case("extract-not-a-video", extract("{t}/clips"), f"{NOT_EXTRACTED}InvalidDataError: ",
         _write(f"clips/{CLIP}.mp4", "this is a text file, not a video\n"), SHARD),
    Case("extract-empty-file", extract("{t}/clips"), f"{NOT_EXTRACTED}InvalidDataError: ",
         _write(f"clips/{CLIP}.mp4", b""), SHARD),
    Case("extract-truncated-video", extract("{t}/clips"), f"{NOT_EXTRACTED}InvalidDataError: ",
         _truncated_clip, SHARD),
    Case("extract-clips-not-downloaded-yet", extract("{t}/clips.txt"),
         f"{NOT_EXTRACTED}FileNotFoundError: ", _write("clips.txt", f"not_yet/{CLIP}.mp4\n"), SHARD),
    Case("extract-no-audio-track", extract("{t}/clips", "--kinds", "vggish"),
         f"{NOT_EXTRACTED}MissingStreamError: no audio stream", _silent_clip, SHARD),
    Case("extract-missing-videos", extract("{t}/missing"), "{t}/missing: no such directory or list file",
         earlier=SHARD),
    Case("extract-list-not-utf8", extract("{t}/clips.txt"),
         "{t}/clips.txt: line 3 is not UTF-8 text (save the file as UTF-8)", _write("clips.txt", LATIN1), SHARD),
    Case("extract-duplicate-ids", extract("{t}/clips.txt"),
         f"{{t}}/clips.txt: clips a/{CLIP}.mp4 and b/{CLIP}.mp4 have the same video id {CLIP}",
         _write("clips.txt", f"a/{CLIP}.mp4\nb/{CLIP}.mp4\n"), SHARD),
    Case("extract-absurd-frame-size", extract("{t}", "--image-size", "100000"),
         "argument --image-size: 100000 is larger than 1024 (published: 224 and 112)", earlier=SHARD),
    Case("extract-negative-workers", extract("{t}/clips", "--workers", "-1"), "argument --workers: -1 is negative",
         _clip_copy(f"clips/{CLIP}.mp4"), SHARD),
    Case("extract-output-is-a-folder", extract("{t}/clips"),
         "{t}/shard.h5: is a folder; give the path of a file to write", _clip_copy(f"clips/{CLIP}.mp4"),
         ("shard.h5/kept.txt",)),
    Case("extract-weights-file-missing", extract("{t}/clips", "--kinds", "r2plus1d", "--weights", "{t}/w.pt"),
         "{t}/w.pt: weights file for 'r2plus1d' not found (expected pretrained, random or a file)",
         _clip_copy(f"clips/{CLIP}.mp4"), SHARD),
    # avvp evaluate
    Case("evaluate-unknown-class", evaluate("{t}/pred.csv"), "{t}/pred.csv:2: unknown class 'Baby_cry'",
         _both(EVALUATE_FILES, _write("pred.csv", f"{EVENTS_HEADER}{CLIP}\t0\t4\tBaby_cry\n")), ("m.json",)),
    Case("evaluate-wrong-header", evaluate("{t}/pred.csv"),
         "{t}/pred.csv:1: missing column(s) onset, offset, event_labels; header has filename, start, end, label",
         _both(EVALUATE_FILES, _write("pred.csv", f"filename\tstart\tend\tlabel\n{CLIP}\t0\t4\tDog\n")),
         ("m.json",)),
    Case("evaluate-commas-instead-of-tabs", evaluate("{t}/pred.csv"),
         "{t}/pred.csv:1: header 'filename,onset,offset,event_labels' is not tab-separated (LLP files use tabs)",
         _both(EVALUATE_FILES, _write("pred.csv", f"filename,onset,offset,event_labels\n{CLIP},0,4,Dog\n")),
         ("m.json",)),
    Case("evaluate-offset-beyond-10", evaluate("{t}/pred.csv"),
         "{t}/pred.csv:2: onset 0 / offset 11 outside 0..10 or onset >= offset",
         _both(EVALUATE_FILES, _write("pred.csv", f"{EVENTS_HEADER}{CLIP}\t0\t11\tDog\n")), ("m.json",)),
    Case("evaluate-empty-span-strict", evaluate("{t}/pred.csv", "--strict"),
         "{t}/pred.csv:2: onset 4 / offset 4 outside 0..10 or onset >= offset",
         _both(EVALUATE_FILES, _write("pred.csv", f"{EVENTS_HEADER}{CLIP}\t4\t4\tDog\n")), ("m.json",)),
    Case("evaluate-not-utf8", evaluate("{t}/pred.csv"),
         "{t}/pred.csv: line 3 is not UTF-8 text (save the file as UTF-8)",
         _both(EVALUATE_FILES, _write("pred.csv", LATIN1)), ("m.json",)),
    Case("evaluate-no-annotations",
         ("evaluate", "--annotations-dir", "{t}", "--pred-audio", "a", "--pred-visual", "v", "--output", "{t}/m.json"),
         "{t}/AVVP_test_pd.csv: LLP annotation file not found. Run 'avvp fetch-annotations --dest {t}'",
         earlier=("m.json",)),
    Case("evaluate-output-is-a-folder", evaluate("{t}/gt.csv"),
         "{t}/m.json: is a folder; give the path of a file to write", EVALUATE_FILES, ("m.json/kept.txt",)),
    # avvp shard and weak-baseline
    Case("shard-not-utf8", ("shard", "--clips", "{t}/full.csv", "--num-shards", "1", "--output-dir", "{t}/s"),
         "{t}/full.csv: line 3 is not UTF-8 text (save the file as UTF-8)", _write("full.csv", LATIN1),
         ("s/000.txt",)),
    Case("shard-more-shards-than-clips",
         ("shard", "--clips", "{t}/full.csv", "--num-shards", "3", "--output-dir", "{t}/s"),
         "{t}/full.csv: 3 shards for only 1 clips: use at most 1", _write("full.csv", ONE_CLIP), ("s/000.txt",)),
    Case("shard-duplicate-clip", ("shard", "--clips", "{t}/full.csv", "--num-shards", "1", "--output-dir", "{t}/s"),
         f"{{t}}/full.csv:3: duplicate clip '{CLIP}' (first on line 2)",
         _write("full.csv", f"{ONE_CLIP}{CLIP}\tDog\n"), ("s/000.txt",)),
    Case("shard-malformed-extra-clip",
         ("shard", "--clips", "{t}/full.csv", "--num-shards", "1", "--output-dir", "{t}/s", "--extra-clips",
          "{t}/extra.txt"),
         "{t}/extra.txt: entry 2: malformed filename 'not-a-clip': expected '<11-character YouTube id>_<start>_<end>'",
         _both(_write("full.csv", ONE_CLIP), _write("extra.txt", "ccccccccccc_30_40\nnot-a-clip\n")), ("s/000.txt",)),
    Case("weak-baseline-not-utf8", ("weak-baseline", "--split-csv", "{t}/split.csv", "--output-dir", "{t}/out"),
         "{t}/split.csv: line 3 is not UTF-8 text (save the file as UTF-8)", _write("split.csv", LATIN1),
         ("out/pred_audio.csv", "out/pred_visual.csv")),
    Case("weak-baseline-unknown-class", ("weak-baseline", "--split-csv", "{t}/split.csv", "--output-dir", "{t}/out"),
         "{t}/split.csv:2: unknown class 'Baby_cry'", _write("split.csv", f"filename\tevent_labels\n{CLIP}\tBaby_cry\n"),
         ("out/pred_audio.csv", "out/pred_visual.csv")),
    Case("weak-baseline-output-is-a-folder",
         ("weak-baseline", "--split-csv", "{t}/split.csv", "--output-dir", "{t}/out"),
         "{t}/out/pred_audio.csv: is a folder; give the path of a file to write", _write("split.csv", ONE_CLIP),
         ("out/pred_audio.csv/kept.txt", "out/pred_visual.csv")),
    Case("weak-baseline-output-under-a-file",
         ("weak-baseline", "--split-csv", "{t}/split.csv", "--output-dir", "{t}/file/out"),
         "{t}/file/out/pred_audio.csv: cannot write there (Not a directory)", _write("split.csv", ONE_CLIP),
         ("file",)),
    # avvp train: bad configs and bad feature stores stop before the run folder is written
    Case("train-config-not-utf8", train("{features}", "{ann}", "--config", "{t}/c.yaml"),
         "{t}/c.yaml: line 3 is not UTF-8 text (save the file as UTF-8)", _write("c.yaml", LATIN1),
         ("run/config.yaml",)),
    Case("train-config-wrong-type-and-typo", train("{features}", "{ann}", "--config", "{t}/c.yaml"),
         "{t}/c.yaml: invalid config: batch_size: Input should be a valid integer, unable to parse string as an "
         "integer; model.hedas: unknown key (check its spelling and nesting)",
         _write("c.yaml", "batch_size: sixteen\nmodel: {hedas: 2}\n"), ("run/config.yaml",)),
    Case("train-heads-do-not-divide-d-model", train("{features}", "{ann}", "--set", "model.num_heads=3"),
         "--set model.d_model=16, --set model.num_heads=3: invalid config (over resources/configs/han.yaml): "
         "model: num_heads 3 does not divide d_model 16",
         earlier=("run/config.yaml",)),
    Case("train-missing-feature-rows", train("{features}", "{t}/ann"),
         "{features}: 1 clip(s) have no 'vggish' features: zz000000001_0_10",
         _annotations_plus("zz000000001_0_10\tDog\n"), ("run/config.yaml",)),
    Case("train-split-overlaps-validation", train("{features}", "{t}/ann"),
         "{t}/ann/AVVP_train.csv, {t}/ann/AVVP_val_pd.csv: 1 clip(s) are in both the train and the validation "
         "split (va000000000_0_10); validation needs held-out clips",
         _annotations_plus("va000000000_0_10\tDog\n"), ("run/config.yaml",)),
    Case("train-nan-features", train("{t}/nan.h5"),
         "{t}/nan.h5: 'r2plus1d' features of 1 clip(s) hold NaN, inf or values beyond +-1e+12: tr000000003_0_10",
         _store_copy("nan.h5", _set_value(np.nan)), ("run/config.yaml",)),
    Case("train-absurd-features", train("{t}/big.h5"),
         "{t}/big.h5: 'r2plus1d' features of 1 clip(s) hold NaN, inf or values beyond +-1e+12: tr000000003_0_10",
         _store_copy("big.h5", _set_value(1e38)), ("run/config.yaml",)),
    Case("train-wrong-feature-width", train("{t}/w.h5"),
         "{t}/w.h5: 'vggish' features have shape (10, 10, 64), expected (N, 10, 128)",
         _store_copy("w.h5", _replace_vggish(np.zeros((10, 10, 64), np.float32))), ("run/config.yaml",)),
    Case("train-wrong-feature-length", train("{t}/w.h5"),
         "{t}/w.h5: 'vggish' features have shape (10, 8, 128), expected (N, 10, 128)",
         _store_copy("w.h5", _replace_vggish(np.zeros((10, 8, 128), np.float32))), ("run/config.yaml",)),
    Case("train-integer-features", train("{t}/i.h5"), "{t}/i.h5: 'vggish' features are int32, expected floating point",
         _store_copy("i.h5", _replace_vggish(np.zeros((10, 10, 128), np.int32))), ("run/config.yaml",)),
    Case("train-noise-ratios-not-set", train("{features}", "{ann}", "--set", "denoising.warmup_epochs=0.9"),
         "config: denoising.noise_ratios is not set; run 'avvp estimate-noise' on a noise estimator and give "
         "its file, e.g. --set denoising.noise_ratios=runs/estimator/noise_ratios.npz", earlier=()),
    Case("train-noise-ratios-out-of-range", train("{features}", "{ann}", "--set", "denoising.noise_ratios={t}/r.npz"),
         "{t}/r.npz: 'visual' holds values outside [0, 1] or non-finite ones", _noise_ratios(visual=1.5), ()),
    # avvp predict
    Case("predict-nan-checkpoint", predict("{t}/bad.pt"),
         "{t}/bad.pt: the checkpoint holds NaN or infinite weights in pooling.classifier.weight",
         _checkpoint_change(_nan_weight), ("pred/pred_audio.csv",)),
    Case("predict-wrong-architecture", predict("{t}/bad.pt"),
         "{t}/bad.pt: checkpoint does not fit the model architecture (wrong shape: projections.audio.weight "
         "(16, 128) vs (64, 128), ", _checkpoint_change(_wider_model), ("pred/pred_audio.csv",)),
    Case("predict-checkpoint-not-a-torch-file", predict("{t}/bad.pt"),
         "{t}/bad.pt: not a readable PyTorch checkpoint (KeyError: 101)", _write("bad.pt", "hello\n"),
         ("pred/pred_audio.csv",)),
    Case("predict-checkpoint-byte-flipped", predict("{t}/c.pt"),
         "{t}/c.pt: corrupt checkpoint: the checksum of its member 'archive/data/", _damaged_checkpoint("flipped"),
         ("pred/pred_audio.csv",)),
    Case("predict-checkpoint-truncated", predict("{t}/c.pt"), "{t}/c.pt: not a readable PyTorch checkpoint (",
         _damaged_checkpoint("truncated"), ("pred/pred_audio.csv",)),
    Case("train-store-truncated", train("{t}/f.h5"), "{t}/f.h5: not a readable HDF5 feature store (",
         lambda t, ws: (t / "f.h5").write_bytes(ws.splits.features.read_bytes()[:100_000]), ("run/config.yaml",)),
    Case("train-config-python-yaml-tag", train("{features}", "{ann}", "--config", "{t}/c.yaml"),
         "{t}/c.yaml: not valid YAML (line 1, column 9: could not determine a constructor for the tag "
         "'tag:yaml.org,2002:python/object/apply:os.system'; tags that build Python objects are not accepted)",
         _write("c.yaml", 'epochs: !!python/object/apply:os.system ["touch ran"]\n'), ("run/config.yaml",)),
    Case("estimate-noise-output-not-npz", ("estimate-noise", "--checkpoint", "{ckpt}", "--features",
         "{features}", "--split-csv", "{t}/split.csv", "--output", "{t}/r.txt"),
         "--output {t}/r.txt: give a file name ending in .npz", _write("split.csv", "x"), ()),
    Case("predict-official-format-of-a-native-file", (*predict(), "--checkpoint-format", "official-han"),
         "{ckpt}: this is a native avvp checkpoint; use --checkpoint-format native", earlier=("pred/pred_audio.csv",)),
    Case("predict-missing-features", predict(split="{t}/split.csv"),
         "{features}: 1 clip(s) have no 'vggish' features: zz000000009_0_10",
         _split_plus("zz000000009_0_10\tDog\n"), ("pred/pred_audio.csv",)),
    Case("predict-duplicated-store-id", predict(features="{t}/dup.h5"),
         "{t}/dup.h5: 'vggish' video ids are not unique: tr000000000_0_10",
         _store_copy("dup.h5", _duplicate_first_id), ("pred/pred_audio.csv",)),
    Case("predict-other-weights", predict(features="{t}/other.h5"),
         "{ckpt}: the 'resnet152' features differ from those the model was trained on: weights: "
         "'random-init(seed=3)' in the checkpoint vs 'torchvision:ResNet152_Weights.IMAGENET1K_V1' in {t}/other.h5 "
         "(pass --allow-feature-mismatch to use them anyway)",
         _store_copy("other.h5", _other_weights), ("pred/pred_audio.csv",)),
    Case("predict-raw-store-for-a-standardised-model", predict("{t}/bad.pt"),
         "{t}/bad.pt: the 'vggish' features differ from those the model was trained on: standardization: "
         "'z-score(epsilon=1e-06, statistics sha256:fff76a589a0a)' in the checkpoint vs 'none' in {features}",
         _checkpoint_change(_standardised_vggish), ("pred/pred_audio.csv",)),
    # avvp merge-features, standardize-features, filter-splits
    Case("merge-ids-shorter-than-features", ("merge-features", "{t}/a.h5", "--output", "{t}/merged.h5"),
         "{t}/a.h5: 'vggish' has 9 video ids for 10 feature rows",
         _store_copy("a.h5", _replace_vggish(drop_last_id=True)), ("merged.h5",)),
    Case("merge-the-same-shard-twice", ("merge-features", "{t}/a.h5", "{t}/a.h5", "--output", "{t}/merged.h5"),
         "{t}/a.h5: clip tr000000000_0_10 has 'r2plus1d' features in {t}/a.h5 too; refusing to merge (is a "
         "shard listed twice?)", _store_copy("a.h5", _unchanged), ("merged.h5",)),
    Case("merge-other-weights", ("merge-features", "{t}/a.h5", "{t}/b.h5", "--output", "{t}/merged.h5"),
         "{t}/b.h5: 'resnet152' attributes differ from those in {t}/a.h5 ",
         _both(_store_copy("a.h5", _unchanged), _store_copy("b.h5", _other_weights_and_clips)), ("merged.h5",)),
    Case("standardize-a-standardised-store",
         ("standardize-features", "--input", "{t}/z.h5", "--split-csv", "{ann}/AVVP_train.csv", "--output", "{t}/zz.h5"),
         "{t}/z.h5: its r2plus1d, resnet152, vggish features are already standardised; standardise the raw store",
         _standardized, ("zz.h5",)),
    Case("standardize-no-reference-clip",
         ("standardize-features", "--input", "{t}/f.h5", "--split-csv", "{ann}/AVVP_train.csv", "--output", "{t}/z.h5"),
         "{t}/f.h5: none of the 6 reference clips has 'vggish' features", _no_audio_for_train_clips, ("z.h5",)),
    Case("filter-splits-split-left-without-clips",
         ("filter-splits", "--features", "{t}/f.h5", "--annotations-dir", "{t}/ann", "--output-dir", "{t}/out"),
         "{t}/f.h5: no clip of the val split(s) has every feature kind ['r2plus1d', 'resnet152', 'vggish']; "
         "nothing written (are the features of this dataset, and are the downloads done?)",
         _split_files("bbbbbbbbbbb_0_10"), ("out/AVVP_val_pd.csv",)),
    # avvp make-demo, fetch-annotations, import-features
    Case("make-demo-negative-count", ("make-demo", "--output", "{t}/demo", "--num-train", "-1"),
         "argument --num-train: -1: expected a number >= 0", earlier=("demo/annotations/AVVP_train.csv",)),
    Case("make-demo-frame-size-1", ("make-demo", "--output", "{t}/demo", "--frame-size", "1"),
         "argument --frame-size: 1: expected an even number >= 16", earlier=("demo/annotations/AVVP_train.csv",)),
    Case("fetch-annotations-wrong-row-count", ("fetch-annotations", "--from-dir", "{t}/src", "--dest", "{t}/dest"),
         "{t}/src/AVVP_val_pd.csv: 646 data rows, expected 649; none of the missing files was written",
         _annotations_copy_short, ("dest/AVVP_train.csv",)),
    Case("fetch-annotations-offline", ("fetch-annotations", "--dest", "{t}/dest", "--source", "http://127.0.0.1:9/"),
         "http://127.0.0.1:9/AVVP_dataset_full.csv: download failed (", earlier=("dest/AVVP_train.csv",)),
    Case("import-features-folder-missing",
         ("import-features", "--vggish", "{t}/nope", "--clips", "{t}/clips.csv", "--output", "{t}/f.h5"),
         "{t}/nope: not a folder (given for vggish)", _write("clips.csv", ONE_CLIP), ("f.h5",)),
    # avvp build-graphs and pretrain
    *(
        Case(f"build-graphs-{name}", build_graphs("{t}/f.h5", *options), f"{what} is outside [-1, 1] (a cosine "
             "similarity)", _store_copy("f.h5", _unchanged), ("graphs.h5",))
        for name, (options, what) in GRAPH_OPTIONS.items()
    ),
    *(
        Case(f"build-graphs-{name}", build_graphs("{t}/f.h5", *options), message, _store_copy("f.h5", _unchanged),
             ("graphs.h5",))
        for name, (options, message) in GRAPH_QUANTILES.items()
    ),
    Case("build-graphs-store-missing", build_graphs("{t}/f.h5"), "{t}/f.h5: feature store not found",
         earlier=("graphs.h5",)),
    Case("build-graphs-not-hdf5", build_graphs("{t}/f.h5"), "{t}/f.h5: not a readable HDF5 feature store (",
         _write("f.h5", "not hdf5"), ("graphs.h5",)),
    Case("build-graphs-foreign-hdf5", build_graphs("{t}/f.h5"), "{t}/f.h5: no 'resnet152' features (store has [])",
         lambda t, ws: h5py.File(t / "f.h5", "w").close(), ("graphs.h5",)),
    Case("build-graphs-no-clip-with-both-kinds", build_graphs("{t}/f.h5"),
         "{t}/f.h5: none of the 20 clip(s) has both resnet152 and vggish features; nothing written",
         _store_copy("f.h5", _vggish_of_other_clips), ("graphs.h5",)),
    Case("pretrain-graphs-not-set", (*PRETRAIN, "--output-dir", "{t}/run"),
         "resources/configs/pretraining/avg.yaml: 'graphs' is not set; give it in the config or with --graphs",
         earlier=("run/config.yaml",)),
    Case("pretrain-graphs-not-a-graph-file", (*PRETRAIN, "--output-dir", "{t}/run", "--graphs", "{features}"),
         "{features}: not a grounding graph file (format 'avvp-grounding-graphs/1' expected)",
         earlier=("run/config.yaml",)),
    Case("pretrain-unknown-loss-variant",
         (*PRETRAIN, "--output-dir", "{t}/run", "--graphs", "{ws}/graphs.h5", "--set", "loss.variant=both"),
         "--set loss.variant=both: invalid config (over resources/configs/pretraining/avg.yaml): loss.variant: "
         "Input should be 'uni', 'cross' or 'multi'", earlier=("run/config.yaml",)),
    Case("train-epochs-option-out-of-range", train("{features}", "{ann}", "--epochs", "0"),
         "--epochs 0: invalid config (over resources/configs/han.yaml): epochs: Input should be greater than 0",
         earlier=("run/config.yaml",)),
    Case("pretrain-config-not-utf8",
         ("pretrain", "--config", "{t}/c.yaml", "--features", "{features}", "--output-dir", "{t}/run"),
         "{t}/c.yaml: line 3 is not UTF-8 text (save the file as UTF-8)", _write("c.yaml", LATIN1),
         ("run/config.yaml",)),
    # avvp parse
    Case("parse-features-made-differently",
         ("parse", "{ws}/clip.mp4", "--checkpoint", "{ws}/parse.pt", "--output-dir", "{t}/out", "--device", "cpu"),
         "{ws}/parse.pt: the 'resnet152' features differ from those the model was trained on: fps: 4 in the "
         "checkpoint vs 8.0 in the parse networks", earlier=("out/clip.json",)),
    Case("parse-line-break-in-a-file-name",
         ("parse", "{t}/clips", "--checkpoint", "{ws}/parse.pt", "--output-dir", "{t}/out", "--device", "cpu"),
         "{t}/clips: '{t}/clips/two\\nlines.mp4': the file name holds a tab or line break, which the clip id in "
         "CSV files and feature stores cannot keep; rename the file", _clip_copy("clips/two\nlines.mp4"),
         ("out/pred_audio.csv",)),
    Case("parse-checkpoint-missing",
         ("parse", "{ws}/clip.mp4", "--checkpoint", "{t}/missing.pt", "--output-dir", "{t}/out", "--device", "cpu"),
         "{t}/missing.pt: checkpoint not found", earlier=("out/clip.json",)),
]  # fmt: skip


def _files(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` by relative path, with its bytes."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _fill(text: str, t: Path, ws: Workspace) -> str:
    return text.format(
        t=t,
        ws=ws.root,
        ann=ws.splits.annotations_dir,
        features=ws.splits.features,
        ckpt=ws.checkpoint,
    )


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_bad_input_is_refused_naming_the_file_and_changes_no_file(
    case: Case, ws: Workspace, tmp_path: Path, capsys, monkeypatch
) -> None:
    monkeypatch.chdir(Path(__file__).resolve().parents[1])  # config paths relative to the repository
    t = tmp_path / "case"
    t.mkdir()
    if case.setup is not None:
        case.setup(t, ws)
    for name in case.earlier:
        (t / name).parent.mkdir(parents=True, exist_ok=True)
        (t / name).write_bytes(EARLIER)
    before = _files(t)
    try:
        code = main([_fill(arg, t, ws) for arg in case.argv])
    except SystemExit as exited:  # argparse's own errors
        code = exited.code
    err = capsys.readouterr().err
    assert code == case.code, err
    assert "Traceback" not in err
    last, expected = err.strip().splitlines()[-1], _fill(case.message, t, ws)
    assert last.startswith(f"avvp {case.argv[0]}: error: ") and expected in last, (
        f"{last!r} lacks {expected!r}"
    )
    assert _files(t) == before, "an earlier output changed, or a file was written"
