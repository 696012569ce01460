"""The foundation commands as a user runs them: fetch-annotations, evaluate, import-features, --help."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from avvp import commands
from avvp.cli import main
from avvp.commands import COMMANDS
from avvp.data.annotations import ANNOTATION_ROWS
from avvp.data.features import FeatureStore


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "avvp.cli", *args], capture_output=True, text=True, check=False
    )


def test_help_lists_commands_and_explains_evaluate():
    top = run_cli("--help")
    assert top.returncode == 0
    for name in ("evaluate", "fetch-annotations", "import-features"):
        assert name in top.stdout
    evaluate = run_cli("evaluate", "--help")
    assert (
        evaluate.returncode == 0
        and "--pred-audio" in evaluate.stdout
        and "AVVP_eval_audio.csv" in evaluate.stdout
    )


def test_fetch_annotations_from_url(tmp_path: Path, llp_dir: Path):
    dest = tmp_path / "ann"
    assert main(["fetch-annotations", "--dest", str(dest), "--source", llp_dir.as_uri() + "/"]) == 0
    assert sorted(p.name for p in dest.iterdir()) == sorted(ANNOTATION_ROWS)


def test_ground_truth_against_itself_scores_100_quickly(tmp_path: Path, llp_dir: Path):
    out = tmp_path / "m.json"
    started = time.perf_counter()
    result = run_cli(
        "evaluate",
        "--annotations-dir", str(llp_dir),
        "--pred-audio", str(llp_dir / "AVVP_eval_audio.csv"),
        "--pred-visual", str(llp_dir / "AVVP_eval_visual.csv"),
        "--output", str(out),
    )  # fmt: skip
    elapsed = time.perf_counter() - started
    assert result.returncode == 0, result.stderr
    metrics = json.loads(out.read_text())
    assert metrics["videos"] == 1200
    for level in ("segment", "event"):
        assert metrics[level] == dict.fromkeys(("audio", "visual", "audio_visual", "type", "event"), 100.0)
    assert result.stdout.count("100.0") == 10
    assert elapsed < 20  # generous: includes interpreter start; the benchmark measures the real time


def test_import_released_features(tmp_path: Path, capsys):
    clips = ["aaaaaaaaaaa_0_10", "bbbbbbbbbbb_5_15", "ccccccccccc_1_11", "ddddddddddd_2_12"]
    labels = tmp_path / "clips.csv"
    labels.write_text("filename\tevent_labels\n" + "".join(f"{c}\tSpeech\n" for c in clips))
    folders = {"vggish": (10, 128), "res152": (80, 2048), "r2plus1d": (10, 512)}
    rng = np.random.default_rng(0)
    for name, shape in folders.items():
        (tmp_path / name).mkdir()
        for clip in clips[:2]:
            np.save(tmp_path / name / f"{clip[:11]}.npy", rng.standard_normal(shape).astype(np.float32))
    np.save(tmp_path / "vggish" / "zzzzzzzzzzz.npy", np.zeros((10, 128), np.float32))  # extra
    np.save(tmp_path / "res152" / "ccccccccccc.npy", np.zeros((80, 1024), np.float32))  # wrong shape
    nan = np.zeros((10, 512), np.float32)
    nan[0, 0] = np.nan
    np.save(tmp_path / "r2plus1d" / "ccccccccccc.npy", nan)
    (tmp_path / "vggish" / "ccccccccccc.npy").write_bytes(b"truncated")
    out = tmp_path / "feats.h5"
    args = ["import-features", "--clips", str(labels), "--output", str(out), "--dtype", "float16"]
    for name in folders:
        args += [f"--{name}", str(tmp_path / name)]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "vggish: 2 of 4 clips written, 1 missing, 1 extra, 1 invalid" in printed
    assert "resnet152: 2 of 4 clips written, 1 missing, 0 extra, 1 invalid" in printed
    with FeatureStore(out) as store:
        assert store.video_ids("resnet152") == clips[:2]
        assert store.read("resnet152", clips[:1]).shape == (1, 80, 2048)
        assert store.attrs("vggish")["weights"].startswith("released LLP features")
    problems = Path(f"{out}.problems.tsv").read_text()
    assert "shape (80, 1024), expected (80, 2048)" in problems and "non-finite" in problems
    assert "zzzzzzzzzzz.npy\textra" in problems and "unreadable" in problems


@pytest.mark.parametrize("argv", [["--help"], ["evaluate", "--help"], ["shard", "--help"]])
def test_light_commands_start_without_torch(argv: list[str]) -> None:
    code = (
        "import sys\n"
        "from avvp.cli import main\n"
        "try:\n"
        f"    main({argv!r})\n"
        "except SystemExit:\n"
        "    pass\n"
        "print(sorted(m for m in ('torch', 'torchvision', 'matplotlib', 'tensorflow') if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip().splitlines()[-1] == "[]"
    assert "usage: avvp" in done.stdout


def test_every_command_module_is_registered() -> None:
    modules = {p.stem for p in Path(commands.__file__).parent.glob("*.py") if p.stem != "__init__"}
    assert modules == {name.replace("-", "_") for name in COMMANDS}


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_each_command_gets_its_full_options(name: str, capsys) -> None:
    with pytest.raises(SystemExit) as exited:
        main([name, "--help"])
    assert exited.value.code == 0
    out = capsys.readouterr().out
    assert f"usage: avvp {name}" in out and "options:" in out and "--" in out.split("options:")[1]
