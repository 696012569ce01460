"""The foundation commands as a user runs them: fetch-annotations, evaluate, import-features, --help."""

from __future__ import annotations

import json
import shutil
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


def test_fetch_annotations_from_url_and_offline_message(tmp_path: Path, llp_dir: Path, capsys):
    dest = tmp_path / "ann"
    assert main(["fetch-annotations", "--dest", str(dest), "--source", llp_dir.as_uri() + "/"]) == 0
    assert sorted(p.name for p in dest.iterdir()) == sorted(ANNOTATION_ROWS)
    offline = tmp_path / "offline"
    assert main(["fetch-annotations", "--dest", str(offline), "--source", "http://127.0.0.1:9/"]) == 2
    err = capsys.readouterr().err
    assert "download failed" in err and "--from-dir" in err
    assert not offline.exists() or list(offline.iterdir()) == []


def test_fetch_annotations_rejects_wrong_row_count(tmp_path: Path, llp_dir: Path, capsys):
    source = tmp_path / "src"
    shutil.copytree(llp_dir, source, ignore=shutil.ignore_patterns("sample"))
    lines = (source / "AVVP_val_pd.csv").read_text().splitlines()[:-3]
    (source / "AVVP_val_pd.csv").write_text("\n".join(lines) + "\n")
    dest = tmp_path / "dest"
    assert main(["fetch-annotations", "--from-dir", str(source), "--dest", str(dest)]) == 2
    assert "AVVP_val_pd.csv: 646 data rows, expected 649" in capsys.readouterr().err
    assert not dest.exists() or not any(dest.iterdir())  # all six or none: nothing was written


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


def test_evaluate_bad_prediction_names_file_and_row(tmp_path: Path, llp_dir: Path):
    pred = tmp_path / "pred.csv"
    pred.write_text("filename\tonset\toffset\tevent_labels\n4YdbENYcIyE_23_33\t0\t4\tBaby_cry\n")
    out = tmp_path / "m.json"
    args = ["evaluate", "--annotations-dir", str(llp_dir), "--pred-visual", str(pred), "--output", str(out)]
    result = run_cli(*args, "--pred-audio", str(pred))
    assert result.returncode == 2
    assert (
        result.stderr.strip().splitlines()[-1] == f"avvp evaluate: error: {pred}:2: unknown class 'Baby_cry'"
    )
    assert not out.exists()
    strict_pred = tmp_path / "empty_span.csv"
    strict_pred.write_text("filename\tonset\toffset\tevent_labels\n4YdbENYcIyE_23_33\t4\t4\tDog\n")
    result = run_cli(*args, "--pred-audio", str(strict_pred), "--strict")
    assert result.returncode == 2 and f"{strict_pred}:2: onset 4 / offset 4" in result.stderr


def test_evaluate_missing_annotations_says_what_to_do(tmp_path: Path, capsys):
    code = main(
        [
            "evaluate",
            "--annotations-dir",
            str(tmp_path),
            "--pred-audio",
            "a",
            "--pred-visual",
            "v",
            "--output",
            str(tmp_path / "m.json"),
        ]
    )
    assert code == 2
    assert "avvp fetch-annotations" in capsys.readouterr().err


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


def test_import_features_requires_existing_folder(tmp_path: Path, capsys):
    labels = tmp_path / "clips.csv"
    labels.write_text("filename\tevent_labels\naaaaaaaaaaa_0_10\tSpeech\n")
    code = main(
        [
            "import-features",
            "--vggish",
            str(tmp_path / "nope"),
            "--clips",
            str(labels),
            "--output",
            str(tmp_path / "f.h5"),
        ]
    )
    assert code == 2 and "nope: not a folder" in capsys.readouterr().err


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


LATIN1 = "filename\tevent_labels\naaaaaaaaaaa_0_10\tDog\nbbbbbbbbbbb_0_10\tCaf\xe9\n".encode("latin-1")


@pytest.mark.parametrize(
    "command",
    [
        ["shard", "--clips", "{bad}", "--num-shards", "1", "--output-dir", "{tmp}/s"],
        ["weak-baseline", "--split-csv", "{bad}", "--output-dir", "{tmp}/w"],
        ["train", "--config", "{bad}", "--output-dir", "{tmp}/t", "--features", "{tmp}/f.h5"],
        ["pretrain", "--config", "{bad}", "--output-dir", "{tmp}/p", "--features", "{tmp}/f.h5"],
    ],
)
def test_text_inputs_that_are_not_utf8_are_one_line_errors(tmp_path: Path, capsys, command: list[str]):
    bad = tmp_path / "latin1.csv"
    bad.write_bytes(LATIN1)
    argv = [arg.format(bad=bad, tmp=tmp_path) for arg in command]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{bad}: line 3 is not UTF-8 text" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["latin1.csv"]


def test_output_paths_that_cannot_be_written_are_one_line_errors(tmp_path: Path, capsys):
    split = tmp_path / "split.csv"
    split.write_text("filename\tevent_labels\naaaaaaaaaaa_0_10\tDog\n")
    (tmp_path / "out" / "pred_audio.csv").mkdir(parents=True)
    assert main(["weak-baseline", "--split-csv", str(split), "--output-dir", str(tmp_path / "out")]) == 2
    assert "pred_audio.csv: is a folder; give the path of a file to write" in capsys.readouterr().err
    (tmp_path / "file").write_text("")
    assert (
        main(["weak-baseline", "--split-csv", str(split), "--output-dir", str(tmp_path / "file" / "x")]) == 2
    )
    assert "cannot write there" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(
            [
                "extract",
                "--videos",
                str(tmp_path),
                "--output",
                str(tmp_path / "x.h5"),
                "--image-size",
                "100000",
            ]
        )
    assert "100000 is larger than 1024" in capsys.readouterr().err
