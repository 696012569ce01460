"""The workflow on a real single-node SLURM cluster (tests/cluster/slurm.sh) through the executor plugin: a
CPU-only node and a node declaring GPUs as GRES; an interrupted run resumed; a job failing on the cluster.

Each run is the demo cut to one experiment (HAN) on 10 clips, so that a run takes about a minute."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from workflow_helpers import REPO, fresh_checkout

SLURM_SCRIPT = REPO / "tests" / "cluster" / "slurm.sh"
STATE_DIR = Path(os.environ.get("AVVP_SLURM_DIR", "/tmp/avvp-slurm"))
CONFIG = "cluster-test.yaml"
# The README's SLURM command, with the test cluster's settings: no account, no accounting (squeue),
# short status-check intervals.
CLUSTER_OPTIONS = (
    "--workflow-profile", "workflow/profiles/slurm", "--slurm-no-account", "--slurm-status-command", "squeue",
    "--slurm-init-seconds-before-status-checks", "1", "--seconds-between-status-checks", "2",
)  # fmt: skip
HEAVY_RULES = {
    "download",
    "extract",
    "merge_features",
    "standardize_features",
    "train",
    "predict",
    "extract_teacher_features",
    "teacher_features",
    "pseudo_labels",
}
GPU_RULES = {"extract", "extract_teacher_features", "train", "predict"}

pytestmark = [
    pytest.mark.skipif(shutil.which("slurmctld") is None, reason="SLURM is not installed (apt-get install slurm-wlm munge)"),
    pytest.mark.skipif(
        importlib.util.find_spec("snakemake_executor_plugin_slurm") is None,
        reason="the SLURM executor plugin is not installed (pip install -e '.[slurm]')",
    ),
    pytest.mark.skipif(shutil.which("avvp") is None, reason="the 'avvp' command is not installed (pip install -e .)"),
    pytest.mark.skipif(os.geteuid() != 0, reason="the test cluster's daemons need root"),
]  # fmt: skip


class SlurmTestCluster:
    """Starts tests/cluster/slurm.sh in the mode a test asks for; stopped at the end of the session."""

    def __init__(self):
        self.mode = None
        self.env = {**os.environ, "SLURM_CONF": str(STATE_DIR / "etc" / "slurm.conf")}

    def start(self, mode: str) -> None:
        if mode != self.mode:
            subprocess.run(["bash", str(SLURM_SCRIPT), "start", mode], check=True, timeout=120)
            self.mode = mode

    def stop(self) -> None:
        subprocess.run(["bash", str(SLURM_SCRIPT), "stop"], check=True, timeout=60)

    def job_tres(self, job_id: str) -> str:
        """The TresPerJob field of ``scontrol show job`` ('' when the job asked for no GRES)."""
        shown = subprocess.run(
            ["scontrol", "show", "job", job_id], capture_output=True, text=True, env=self.env, check=True
        ).stdout
        match = re.search(r"TresPerJob=(\S+)", shown)
        return match.group(1) if match else ""


@pytest.fixture(scope="session")
def cluster():
    test_cluster = SlurmTestCluster()
    yield test_cluster
    test_cluster.stop()


def write_test_config(checkout: Path) -> None:
    """The demo's config cut to HAN on 10 clips in one shard, two epochs."""
    config = yaml.safe_load((checkout / "config" / "config.yaml").read_text())
    config["demo"].update(num_train=6, num_val=2, num_test=2, num_classes=3, frame_size=32, fps=8)
    config["shards"] = 1
    config["training"]["epochs"] = 2
    config["experiments"] = {"han": config["experiments"]["han"]}
    config["noise_estimators"], config["label_refiners"] = {}, {}
    (checkout / CONFIG).write_text(yaml.safe_dump(config, sort_keys=False))


def new_checkout(tmp_path_factory, name: str) -> Path:
    checkout = fresh_checkout(tmp_path_factory.mktemp(name))
    write_test_config(checkout)
    return checkout


def snakemake_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "snakemake", "--configfile", CONFIG, *args]


def run(checkout: Path, *args: str, env=None, timeout: float = 600) -> subprocess.CompletedProcess:
    done = subprocess.run(
        snakemake_command(*args), cwd=checkout, env=env, capture_output=True, text=True, timeout=timeout
    )
    return done


def scores(checkout: Path) -> dict:
    """The metrics of every method of the run, and the report's table lines with numbers."""
    metrics = checkout / "results" / "demo" / "metrics"
    report = (checkout / "results" / "demo" / "report" / "report.md").read_text()
    lines = [line for line in report.splitlines() if line.startswith("|") and re.search(r"\d+\.\d", line)]
    return {
        "metrics": {path.stem: json.loads(path.read_text()) for path in sorted(metrics.glob("*.json"))},
        "report": lines,
    }


def submitted_jobs(output: str) -> dict[str, list[str]]:
    """``{rule: [SLURM job ids]}`` of the jobs the plugin submitted (from its 'submitted' lines)."""
    jobs: dict[str, list[str]] = {}
    pattern = r"submitted with SLURM jobid (\d+) \(log: \S*/slurm_logs/rule_([A-Za-z0-9_]+)/"
    for job_id, rule in re.findall(pattern, output):
        jobs.setdefault(rule, []).append(job_id)
    return jobs


@pytest.fixture(scope="session")
def local_reference(tmp_path_factory):
    """Scores of the same config run locally (the numbers the cluster runs must reproduce)."""
    checkout = new_checkout(tmp_path_factory, "local")
    done = run(checkout, "--cores", "2")
    assert done.returncode == 0, done.stderr[-4000:]
    return scores(checkout)


def test_demo_on_a_cpu_only_node_gives_the_local_scores(cluster, local_reference, tmp_path_factory):
    cluster.start("cpu")
    checkout = new_checkout(tmp_path_factory, "cpu")
    done = run(checkout, *CLUSTER_OPTIONS, "--config", "cluster={gpus: 0}", env=cluster.env)
    assert done.returncode == 0, done.stderr[-4000:]
    jobs = submitted_jobs(done.stderr + done.stdout)
    assert set(jobs) == HEAVY_RULES  # light rules (make_demo, filter_splits, evaluate, report ...) ran here
    assert all(cluster.job_tres(job) == "" for ids in jobs.values() for job in ids)
    assert scores(checkout) == local_reference


def test_demo_on_a_gpu_node_interrupted_mid_extraction_resumes_to_the_local_scores(
    cluster, local_reference, tmp_path_factory
):
    cluster.start("gpu")
    checkout = new_checkout(tmp_path_factory, "gpu")
    command = snakemake_command(*CLUSTER_OPTIONS)
    first = subprocess.Popen(
        command, cwd=checkout, env=cluster.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    extract_log = checkout / "logs" / "demo" / "extract" / "000.log"
    deadline = time.monotonic() + 300
    while not (extract_log.is_file() and extract_log.stat().st_size) and first.poll() is None:
        assert time.monotonic() < deadline, "extraction did not start within 5 minutes"
        time.sleep(0.5)
    first.send_signal(signal.SIGINT)  # Ctrl-C: Snakemake cancels its SLURM jobs and exits
    first_output = first.communicate(timeout=120)[0]
    assert first.returncode != 0, first_output[-3000:]
    assert not (checkout / "data" / "demo" / "features" / "shards" / "000.h5").exists()

    done = run(checkout, *CLUSTER_OPTIONS, env=cluster.env)
    assert done.returncode == 0, done.stderr[-4000:]
    jobs = submitted_jobs(first_output + done.stderr + done.stdout)
    assert set(jobs) == HEAVY_RULES
    for rule, ids in jobs.items():
        expected = "gres:gpu:1" if rule in GPU_RULES else ""
        assert [cluster.job_tres(job) for job in ids] == [expected] * len(ids), rule
    assert scores(checkout) == local_reference


def test_a_job_failing_on_the_cluster_names_its_log_and_leaves_no_output(cluster, tmp_path_factory):
    cluster.start("gpu")
    checkout = new_checkout(tmp_path_factory, "failing")
    config = yaml.safe_load((checkout / CONFIG).read_text())
    config["shards"] = 10  # one clip per shard
    (checkout / CONFIG).write_text(yaml.safe_dump(config, sort_keys=False))
    prepared = run(checkout, "--cores", "1", "data/demo/shards/000.txt")
    assert prepared.returncode == 0, prepared.stderr[-4000:]
    (clip,) = (checkout / "data" / "demo" / "shards" / "000.txt").read_text().split()
    (checkout / "data" / "demo" / "videos" / f"{clip}.mp4").write_bytes(b"not a video" * 100)

    shard = checkout / "data" / "demo" / "features" / "shards" / "000.h5"
    done = run(
        checkout, *CLUSTER_OPTIONS, "--retries", "0", str(shard.relative_to(checkout)), env=cluster.env
    )
    assert done.returncode != 0
    output = done.stderr + done.stdout
    assert "Error in rule extract" in output and "logs/demo/extract/000.log" in output
    assert (
        "none of the 1 clip(s) could be extracted"
        in (checkout / "logs" / "demo" / "extract" / "000.log").read_text()
    )
    assert not shard.exists() and not list(shard.parent.glob("000.h5*"))
