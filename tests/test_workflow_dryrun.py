"""The Snakemake workflow's DAG: demo and LLP dry runs, config validation, lint, SLURM profile."""

from __future__ import annotations

import csv
import importlib.util
import re
import subprocess
import sys
import time

import pytest
import yaml
from workflow_helpers import REPO, fresh_checkout, job_counts, snakemake


@pytest.fixture(scope="module")
def checkout(tmp_path_factory):
    return fresh_checkout(tmp_path_factory.mktemp("checkout"))


def llp(checkout, llp_dir, *args, overlays=(), config=()):
    """Snakemake with config/llp.yaml (then the ``overlays`` config files) and the LLP annotations folder."""
    return snakemake(
        checkout, *args, "--configfile", "config/llp.yaml", *overlays,
        "--config", f"annotations_dir={llp_dir}", *config,
    )  # fmt: skip


def test_demo_dry_run_builds_the_whole_default_target(checkout):
    done = snakemake(checkout, "-n")
    assert done.returncode == 0, done.stderr[-3000:]
    counts = job_counts(done.stdout)
    assert counts == {
        "make_demo": 1, "shard_clips": 1, "download": 2, "extract": 2, "merge_features": 1, "filter_splits": 1,
        "standardize_features": 1, "build_graphs": 1, "pretrain_config": 1, "pretrain_avg": 1,
        "noise_estimator_config": 1, "train_noise_estimator": 1, "estimate_noise": 1,
        "label_refiner_config": 1, "train_label_refiner": 1, "refine_labels": 1, "train_config": 8,
        "train": 8, "predict": 8, "weak_baseline": 1, "evaluate": 9, "report": 1, "all": 1,
        "extract_teacher_features": 2, "teacher_features": 1, "pseudo_labels": 1, "total": 58,
    }  # fmt: skip


def test_llp_dry_run_has_sharded_jobs_and_is_fast(checkout, llp_dir):
    start = time.perf_counter()
    done = llp(checkout, llp_dir, "-n", "-p")
    elapsed = time.perf_counter() - start
    assert done.returncode == 0, done.stderr[-3000:]
    counts = job_counts(done.stdout)
    assert counts["download"] == counts["extract"] == counts["extract_teacher_features"] == 40
    assert counts["teacher_features"] == counts["pseudo_labels"] == 1
    assert "--pseudo-labels valor results/llp/teachers/valor/agreement.json" in done.stdout
    assert counts["train"] == 49 and counts["evaluate"] == 50 and "make_demo" not in counts
    assert counts["build_graphs"] == 1 and counts["pretrain_avg"] == 3  # uni, cross, multi
    # one JoMoLD noise estimator, shared by the 20 denoised experiments and the 2 co-training ones
    assert counts["train_noise_estimator"] == counts["estimate_noise"] == 1
    assert counts["train_label_refiner"] == counts["refine_labels"] == 2  # MA with and without CL
    assert elapsed < 30, f"LLP dry run took {elapsed:.1f} s"
    han = "--experiment han 'A_cross+V_cross (HAN)' --experiment han 'HAN LS-V' --experiment han HAN --experiment"
    assert han in done.stdout


def _as_list(value):
    return [value] if isinstance(value, str) else value


NOT_BUILT = {"UWAV"}
"""Methods of the reference CSV that config/llp.yaml does not reproduce (UWAV: a reference row only)."""


def test_llp_config_reproduces_every_method_of_the_papers_once():
    with (REPO / "resources" / "paper_results.csv").open(newline="") as handle:
        methods = {row["method"] for row in csv.DictReader(handle)} - NOT_BUILT
    experiments = yaml.safe_load((REPO / "config" / "llp.yaml").read_text())["experiments"]
    listed = [m for spec in experiments.values() for m in _as_list(spec.get("paper_method") or [])]
    assert sorted(listed) == sorted(methods)
    assert all((REPO / spec["config"]).is_file() for spec in experiments.values())
    new = sorted(name for name, spec in experiments.items() if not spec.get("paper_method"))
    assert new == ["jomold_clip_clap", "valor_dgm_msdu"]  # combinations no paper reports


def test_reference_rows_are_from_the_seed_papers_or_marked_external():
    with (REPO / "resources" / "paper_results.csv").open(newline="") as handle:
        papers = {row["paper"] for row in csv.DictReader(handle)}
    assert {p for p in papers if not p.startswith("external:")} == {"000", "002", "003", "004"}
    assert {p for p in papers if p.startswith("external:")} == {
        "external:VALOR-NeurIPS2023",
        "external:UWAV-CVPR2025",
    }


def test_teachers_give_experiments_their_pseudo_labels_and_features(checkout, llp_dir):
    names = ("valor", "valor_plus_plus", "jomold_clip_clap", "valor_dgm_msdu")
    targets = [f"results/llp/train/{name}.yaml" for name in names]
    done = llp(checkout, llp_dir, *targets)
    assert done.returncode == 0, done.stderr[-3000:]
    valor, plus_plus, jomold, dgm = (yaml.safe_load((checkout / t).read_text()) for t in targets)
    labels = "results/llp/teachers/valor/pseudo_labels.h5"
    assert valor["pseudo_labels"] == plus_plus["pseudo_labels"] == dgm["pseudo_labels"] == labels
    assert "pseudo_labels" not in jomold and jomold["denoising"]["noise_ratios"].endswith("noise_ratios.npz")
    assert dgm["gradient_modulation"]["gamma"] == 0.1 and set(dgm["loss"]["terms"]) >= {"pseudo_audio", "wsl"}
    dry = llp(checkout, llp_dir, "-n", "-p")
    both = "--features data/llp/features/features.h5 data/llp/teachers/valor/features.h5"
    for name in ("valor_plus_plus", "jomold_clip_clap"):
        assert f"avvp train --config results/llp/train/{name}.yaml {both} " in dry.stdout
        assert f"avvp predict --checkpoint results/llp/train/{name}/best.pt {both} " in dry.stdout
    assert (
        "avvp train --config results/llp/train/valor.yaml --features data/llp/features/features.h5 "
        in dry.stdout
    )
    assert "--new-experiment valor_dgm_msdu --new-experiment jomold_clip_clap --baseline" in dry.stdout


@pytest.mark.parametrize(
    ("experiment", "message"),
    [
        ({"paper_method": "VALOR", "config": "resources/configs/valor_han.yaml", "teacher": "clip"},
         "config: experiment 'extra' names teacher 'clip'; known: valor"),
        ({"paper_method": "VALOR", "config": "resources/configs/han.yaml", "teacher_features": True},
         "config: experiment 'extra' sets teacher_features but names no teacher"),
        ({"paper_method": "VALOR", "config": "resources/configs/valor_han.yaml"},
         "config: experiment 'extra' trains on pseudo-labels (loss terms pseudo_audio, pseudo_visual): name the "
         "teacher that makes them (teacher: valor)"),
        ({"paper_method": "VALOR", "config": "resources/configs/han.yaml", "teacher": "valor"},
         "config: experiment 'extra' names teacher 'valor' but neither trains on its pseudo-labels"),
    ],
    ids=["unknown-teacher", "features-without-teacher", "pseudo-labels-without-teacher", "teacher-unused"],
)  # fmt: skip
def test_teacher_mistakes_are_named_when_the_workflow_starts(checkout, experiment, message):
    (checkout / "teacher.yaml").write_text(yaml.safe_dump({"experiments": {"extra": experiment}}))
    done = snakemake(checkout, "-n", "--configfile", "config/config.yaml", "teacher.yaml")
    assert done.returncode != 0
    assert message in done.stdout + done.stderr, (done.stdout + done.stderr)[-2000:]


def test_unknown_paper_method_fails_the_dry_run_naming_it(checkout):
    typo = {"experiments": {"han": {"paper_method": ["A_cross+V_cross (HAN)", "HAN LS V"]}}}
    (checkout / "typo.yaml").write_text(yaml.safe_dump(typo))
    done = snakemake(checkout, "-n", "--configfile", "config/config.yaml", "typo.yaml")
    assert done.returncode != 0
    message = "experiment 'han': paper method 'HAN LS V' is not a method of resources/paper_results.csv"
    assert f"{message}; close names: 'HAN LS-V'" in done.stdout + done.stderr


def test_an_unknown_noise_estimator_or_label_refiner_is_named(checkout):
    for key, section in (("noise_estimator", "jomold"), ("label_refiner", "ma")):
        typo = {"experiments": {"han": {"paper_method": "HAN", key: f"{section}x"}}}
        (checkout / "typo.yaml").write_text(yaml.safe_dump(typo))
        done = snakemake(checkout, "-n", "--configfile", "config/config.yaml", "typo.yaml")
        assert done.returncode != 0
        assert f"experiment 'han' names {key} '{section}x'; known: {section}" in done.stdout + done.stderr


def test_label_refiners_and_co_training_get_their_files(checkout, llp_dir):
    targets = [
        "results/llp/train/han_jocor.yaml",
        "results/llp/train/ma_no_cl.yaml",
        "results/llp/refinement/ma.yaml",
    ]
    done = llp(checkout, llp_dir, *targets)
    assert done.returncode == 0, done.stderr[-3000:]
    jocor, ma_no_cl, base = (yaml.safe_load((checkout / t).read_text()) for t in targets)
    assert jocor["co_training"]["noise_ratios"] == "results/llp/denoising/jomold/noise_ratios.npz"
    assert jocor["co_training"]["method"] == "jocor" and "denoising" not in jocor
    assert ma_no_cl["refined_labels"] == "results/llp/refinement/ma_no_cl/refined_labels.npz"
    assert base["refined_labels"] is None and base["loss"]["contrastive"]["form"] == "cross_entropy"
    dry = llp(checkout, llp_dir, "-n", "-p")
    assert (
        "avvp refine-labels --checkpoint results/llp/refinement/ma/best.pt --features data/llp/features/features.h5"
        " --split-csv results/llp/splits/AVVP_train.csv --output results/llp/refinement/ma/refined_labels.npz"
        in dry.stdout
    )
    assert (
        "--refined-labels ma results/llp/refinement/ma/refined_labels.npz --refined-labels ma_no_cl"
        in dry.stdout
    )


def test_paper_methods_of_any_paper_and_a_paper_filter_reach_the_report(checkout):
    (checkout / "papers.yaml").write_text(yaml.safe_dump({"reference": {"paper": ["000", "002"]}}))
    done = snakemake(checkout, "-n", "-p", "--configfile", "config/config.yaml", "papers.yaml")
    assert done.returncode == 0, done.stderr[-3000:]
    assert "--experiment base_adv_skip_gcaa Base+Adv+Skip+GCAA" in done.stdout
    assert "--reference resources/paper_results.csv --paper 000 --paper 002 --graphs" in done.stdout


def test_the_modules_the_workflow_imports_when_it_parses_are_light():
    heavy = ("torch", "h5py", "matplotlib", "numpy")
    # those of common.smk
    modules = (
        "avvp.command_line_config, avvp.config_files, avvp.data.annotations, avvp.io,"
        " avvp.preparation.shard_names, avvp.reports.reference"
    )
    code = f"import sys, {modules}; print([m for m in {heavy!r} if m in sys.modules])"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_llp_config_replaces_the_demo_config(checkout, llp_dir):
    done = llp(checkout, llp_dir, "results/llp/train/han.yaml")
    assert done.returncode == 0, done.stderr[-3000:]
    han = yaml.safe_load((checkout / "results" / "llp" / "train" / "han.yaml").read_text())
    recipe = yaml.safe_load((checkout / "resources" / "configs" / "han.yaml").read_text())
    splits = {"train": "results/llp/splits/AVVP_train.csv", "val": "results/llp/splits/AVVP_val_pd.csv"}
    assert han == {**recipe, "annotations_dir": str(llp_dir), "splits": splits}


def test_demo_training_settings_merge_over_the_base_config(checkout):
    done = snakemake(checkout, "results/demo/train/a_cross_v_self.yaml")
    assert done.returncode == 0, done.stderr[-3000:]
    settings = yaml.safe_load((checkout / "results" / "demo" / "train" / "a_cross_v_self.yaml").read_text())
    demo = yaml.safe_load((checkout / "config" / "config.yaml").read_text())
    assert settings["model"]["visual_aggregation"] == "self"
    assert settings["model"]["d_model"] == demo["training"]["model"]["d_model"]
    assert settings["epochs"] == demo["training"]["epochs"]
    assert (
        settings["loss"]
        == yaml.safe_load((checkout / "resources" / "configs" / "demo.yaml").read_text())["loss"]
    )
    assert settings["annotations_dir"] == "data/demo/annotations"


def test_pretraining_experiments_start_from_their_variants_encoder(checkout, llp_dir):
    targets = ["results/llp/train/pretrain_e2e_cross.yaml", "results/llp/pretraining/cross.yaml"]
    done = llp(checkout, llp_dir, *targets)
    assert done.returncode == 0, done.stderr[-3000:]
    settings = yaml.safe_load((checkout / targets[0]).read_text())
    pretraining = yaml.safe_load((checkout / targets[1]).read_text())
    base = yaml.safe_load((checkout / "resources" / "configs" / "pretraining" / "avg.yaml").read_text())
    assert pretraining == {**base, "loss": {**base["loss"], "variant": "cross"}}
    assert settings["pretrained_encoder"] == "results/llp/pretraining/cross/encoder.pt"
    assert settings["model"]["input_encoder"] == {**pretraining["encoder"], "trainable": True}
    assert settings["model"]["attention"] == "gcaa"  # Base+Adv+Skip+GCAA underneath
    dry = llp(checkout, llp_dir, "-n", "-p")
    assert (
        "avvp build-graphs --features data/llp/features/features.h5 --output results/llp/pretraining/graphs.h5"
        in dry.stdout
    )
    assert (
        "--graphs results/llp/pretraining/graphs.h5 --pretraining cross results/llp/pretraining/cross"
        in dry.stdout
    )


def test_extra_pretraining_clips_are_sharded_with_the_dataset(checkout, llp_dir):
    (checkout / "audioset.txt").write_text("ccccccccccc_30_40\n")
    (checkout / "extra.yaml").write_text(yaml.safe_dump({"pretraining": {"extra_clips": "audioset.txt"}}))
    done = llp(checkout, llp_dir, "-n", "-p", overlays=["extra.yaml"])
    assert done.returncode == 0, done.stderr[-3000:]
    assert "--extra-clips audioset.txt --num-shards 40" in done.stdout


def test_imported_features_skip_videos(checkout, llp_dir):
    imports = "features={source: import, import: {vggish: /f/v, res152: /f/r, r2plus1d: /f/3}}"
    extracting = llp(checkout, llp_dir, "-n", "-p", config=[imports])
    assert extracting.returncode != 0 and "set its source to import" in extracting.stdout + extracting.stderr
    valor = "{clip: /v/c, clap: /v/m, visual_labels: /v/vl, audio_labels: /v/al}"
    teachers = f"teachers={{valor: {{source: import, import: {valor}}}}}"
    done = llp(
        checkout,
        llp_dir,
        "-n",
        "-p",
        "all",
        "data/llp/teachers/valor/features.h5",
        config=[imports, teachers],
    )
    assert done.returncode == 0, done.stderr[-3000:]
    counts = job_counts(done.stdout)
    assert counts["import_features"] == counts["teacher_features"] == counts["pseudo_labels"] == 1
    assert not {"download", "extract", "shard_clips", "extract_teacher_features"} & set(counts)
    assert "avvp import-features --vggish /f/v --res152 /f/r --r2plus1d /f/3" in done.stdout
    # the teacher's clips are those of the run's label file, not of a default annotations folder
    pattern = r"avvp import-features --clip /v/c --clap /v/m --clips (\S+) --output (\S+)"
    teacher_import = re.search(pattern, done.stdout)
    assert teacher_import is not None, done.stdout[-3000:]
    clips, output = teacher_import.groups()
    assert clips.endswith("/AVVP_dataset_full.csv") and not clips.startswith("data/annotations"), clips
    assert output == "data/llp/teachers/valor/features.h5"
    assert "avvp pseudo-labels --import-visual /v/vl --import-audio /v/al --labels" in done.stdout


def test_invalid_config_is_rejected_naming_the_key_in_one_line(checkout):
    done = snakemake(checkout, "-n", "--config", "shards=0")
    assert done.returncode != 0
    output = done.stdout + done.stderr
    assert "invalid config: shards: 0 is less than the minimum of 1" in output
    assert "$schema" not in output  # not the whole schema
    (checkout / "typo.yaml").write_text(yaml.safe_dump({"training": {}, "experimentz": {}}))
    typo = snakemake(checkout, "-n", "--configfile", "config/config.yaml", "typo.yaml")
    assert (
        "invalid config: (top level): Additional properties are not allowed ('experimentz' was unexpected)"
        in (typo.stdout + typo.stderr)
    )


def test_lint_is_clean(checkout):
    done = snakemake(checkout, "--lint")
    assert done.returncode == 0, done.stdout[-3000:]
    assert "Congratulations, your workflow is in a good condition!" in done.stdout + done.stderr


@pytest.mark.skipif(
    importlib.util.find_spec("snakemake_executor_plugin_slurm") is None,
    reason="the SLURM executor plugin is not installed (pip install 'avvp[slurm]')",
)
def test_slurm_profile_requests_gpus_as_generic_resources(checkout, llp_dir):
    done = llp(checkout, llp_dir, "-n", "--workflow-profile", "workflow/profiles/slurm")
    assert done.returncode == 0, done.stderr[-3000:]
    blocks = done.stdout.split("\n\n")
    extract = next(b for b in blocks if "rule extract:" in b)
    train = next(b for b in blocks if "rule train:" in b)
    teacher = next(b for b in blocks if "rule extract_teacher_features:" in b)
    assert "gpu=1" in extract and "gpu=1" in train and "gpu=1" in teacher
    assert "--threads 8" in train and "mem_mb=32000" in train  # config/llp.yaml's cluster section
    download = next(b for b in blocks if "rule download:" in b)
    assert "gpu=" not in download
    profile = yaml.safe_load((checkout / "workflow" / "profiles" / "slurm" / "config.yaml").read_text())
    assert profile["executor"] == "slurm" and "slurm_extra" not in str(profile)
    assert "set-resources" not in profile and "set-threads" not in profile  # the config's cluster section


def rule_blocks(output: str, rule: str) -> list[str]:
    """The dry-run blocks of ``rule``'s jobs."""
    return [block for block in output.split("\n\n") if f"rule {rule}:" in block]


def test_one_setting_makes_the_run_cpu_only_or_asks_with_gres(checkout):
    cpu = snakemake(checkout, "-n", "-p", "--config", "cluster={gpus: 0}")
    assert cpu.returncode == 0, cpu.stderr[-3000:]
    assert "gpu=" not in cpu.stdout and "gres=" not in cpu.stdout
    gres = snakemake(checkout, "-n", "-p", "--config", "cluster={gres: gpu:a100:1}")
    assert gres.returncode == 0, gres.stderr[-3000:]
    (train,) = [b for b in rule_blocks(gres.stdout, "train") if "experiment=han" in b]
    assert "gres=gpu:a100:1" in train and "gpu=" not in train.replace("gres=gpu", "")
    assert all("gres=" not in b for b in rule_blocks(gres.stdout, "download"))


def test_a_stage_runs_its_configured_threads_whatever_the_cores(checkout):
    done = snakemake(checkout, "-n", "-p", "--config", "cluster={stages: {train: {threads: 3, mem_mb: 500}}}")
    assert done.returncode == 0, done.stderr[-3000:]
    (train,) = [b for b in rule_blocks(done.stdout, "train") if "experiment=han" in b]
    assert "OMP_NUM_THREADS=3 avvp train" in train and "--threads 3" in train and "mem_mb=500" in train
    assert "runtime=30" in train  # the stage's other settings keep their defaults


def test_a_misspelled_annotations_folder_is_named(checkout, tmp_path):
    done = snakemake(
        checkout,
        "-n",
        "--configfile",
        "config/llp.yaml",
        "--config",
        f"annotations_dir={tmp_path}/anotations",
    )
    assert done.returncode != 0
    assert f"annotations_dir '{tmp_path}/anotations' does not exist" in done.stdout + done.stderr
    assert f"avvp fetch-annotations --dest {tmp_path}/anotations" in done.stdout + done.stderr


def _reversed_keys(value):
    """``value`` with the keys of every mapping in reverse order (lists unchanged)."""
    if isinstance(value, dict):
        return {key: _reversed_keys(value[key]) for key in reversed(list(value))}
    return value


def test_reordering_the_keys_of_an_unchanged_config_reruns_nothing(tmp_path):
    checkout = fresh_checkout(tmp_path)
    demo = yaml.safe_load((checkout / "config" / "config.yaml").read_text())
    demo["demo"].update(num_train=4, num_val=2, num_test=2, frame_size=32)  # a cheap make_demo
    (checkout / "small.yaml").write_text(yaml.safe_dump(demo, sort_keys=False))
    (checkout / "reordered.yaml").write_text(yaml.safe_dump(_reversed_keys(demo), sort_keys=False))
    # one job of every rule whose params are config mappings
    targets = [
        "data/demo/videos", "results/demo/train/han.yaml", "results/demo/denoising/jomold.yaml",
        "results/demo/refinement/ma.yaml", "results/demo/pretraining/uni.yaml",
    ]  # fmt: skip
    done = snakemake(checkout, "--configfile", "small.yaml", "--", *targets)
    assert done.returncode == 0, done.stderr[-3000:]
    again = snakemake(checkout, "-n", "--configfile", "reordered.yaml", "--", *targets)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "Nothing to be done" in again.stdout + again.stderr, again.stdout[-3000:]
    demo["training"]["epochs"] += 1  # a real change is still seen
    (checkout / "changed.yaml").write_text(yaml.safe_dump(_reversed_keys(demo), sort_keys=False))
    changed = snakemake(checkout, "-n", "--configfile", "changed.yaml", "--", *targets)
    assert job_counts(changed.stdout) == {
        "train_config": 1, "noise_estimator_config": 1, "label_refiner_config": 1, "total": 3
    }  # fmt: skip


@pytest.mark.parametrize(
    ("overlay", "message"),
    [
        ({"training": {"model": {"audio_agregation": "cross"}}},
         "config: experiment 'han': invalid config: model.audio_agregation: unknown key"),
        ({"experiments": {"ma": {"train": {"epochs": "ten"}}}},
         "config: experiment 'ma': invalid config: epochs: Input should be a valid integer"),
        ({"noise_estimators": {"jomold": {"train": {"optimizer": {"lr": "fast"}}}}},
         "config: noise_estimators.jomold: invalid config: optimizer.lr: Input should be a valid number"),
        ({"label_refiners": {"ma": {"train": {"batch_size": 0}}}},
         "config: label_refiners.ma: invalid config: batch_size: Input should be greater than 0"),
        ({"pretraining": {"settings": {"epohcs": 3}}},
         "config: pretraining variant 'uni': invalid config: epohcs: unknown key"),
        ({"experiments": {"han": {"config": "resources/configs/nope.yaml"}}},
         "config: experiment 'han': resources/configs/nope.yaml: config file not found"),
    ],
    ids=["typo-in-training", "wrong-type-in-experiment", "estimator", "refiner", "pretraining", "missing-file"],
)  # fmt: skip
def test_training_configs_are_validated_when_the_workflow_starts(checkout, overlay, message):
    (checkout / "bad_training.yaml").write_text(yaml.safe_dump(overlay))
    done = snakemake(checkout, "-n", "--configfile", "config/config.yaml", "bad_training.yaml")
    assert done.returncode != 0
    output = done.stdout + done.stderr
    assert message in output, output[-2000:]
    assert "Building DAG" not in output and "InputFunctionException" not in output


def test_more_shards_than_clips_are_refused_when_the_workflow_starts(checkout, llp_dir):
    demo = snakemake(checkout, "-n", "--config", "shards=121")  # the demo has 72 + 24 + 24 clips
    assert demo.returncode != 0
    assert "config: shards: 121 shards for only 120 clips: use at most 120" in demo.stdout + demo.stderr
    assert snakemake(checkout, "-n", "--config", "shards=120").returncode == 0
    many = llp(checkout, llp_dir, "-n", config=["shards=20000"])
    assert "config: shards: 20000 shards for only 11849 clips: use at most 11849" in many.stdout + many.stderr
