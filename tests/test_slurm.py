"""The SLURM profile: GPU requests in the plan, and the tiny workflow on a real SLURM.

The run test needs a SLURM controller (CI starts a single-node one with
scripts/slurm/start-test-slurm.sh) and is skipped where none answers. Every job must be
submitted with sbatch and finish, the GPU requests included (the test node declares one gres
GPU), and the results must equal a local run's.
"""

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from test_workflow import ROOT, planned_jobs, snakemake

PROFILE = ROOT / "workflow" / "profiles" / "slurm"
GPU_RULES = ("train_cyclegan", "train_unet", "predict", "segment")


def slurm_is_up() -> bool:
    if not shutil.which("sinfo") or not shutil.which("sbatch"):
        return False
    result = subprocess.run(["sinfo", "-h", "-o", "%t"], capture_output=True, text=True, timeout=20)
    return result.returncode == 0 and any(s in result.stdout for s in ("idle", "mix", "alloc"))


def test_profile_asks_for_gpus_on_the_training_jobs(tmp_path):
    result = snakemake(tmp_path, "-n", "--profile", str(PROFILE))
    blocks = {b.split(":", 1)[0]: b for b in result.stdout.split("\nrule ")}
    for rule in GPU_RULES:
        assert re.search(r"resources:.*\bgpu=1\b", blocks[rule]), blocks[rule]
        assert "cpus_per_task=4" in blocks[rule]
    assert "gpu=1" not in blocks["check_image"]


def test_profile_asks_for_a_gpu_for_pretraining(tmp_path):
    result = snakemake(tmp_path, "-n", "--profile", str(PROFILE), "--config", "cyclegan={init: pretrained}")
    blocks = {b.split(":", 1)[0]: b for b in result.stdout.split("\nrule ")}
    assert re.search(r"resources:.*\bgpu=1\b", blocks["pretrain_cyclegan"]), blocks["pretrain_cyclegan"]
    assert "cpus_per_task=4" in blocks["pretrain_cyclegan"]


def profile_for_the_test_node(tmp_path) -> Path:
    """The shipped profile with what a 2-core test node without accounting needs."""
    profile = yaml.safe_load((PROFILE / "config.yaml").read_text())
    profile["default-resources"].update(slurm_partition="debug", mem_mb=1000, runtime=20)
    for rule in GPU_RULES:
        profile["set-resources"][rule].update(mem_mb=1500, cpus_per_task=1, runtime=20)
        profile["set-threads"][rule] = 1
    profile.update(
        {
            "slurm-status-command": "squeue",  # no accounting database: sacct would hang
            "slurm-init-seconds-before-status-checks": 2,
            "seconds-between-status-checks": 2,
            "latency-wait": 5,
        }
    )
    folder = tmp_path / "profile"
    folder.mkdir()
    (folder / "config.yaml").write_text(yaml.safe_dump(profile))
    return folder


@pytest.mark.skipif(not slurm_is_up(), reason="no SLURM controller answers (scripts/slurm/start-test-slurm.sh)")
def test_tiny_workflow_through_slurm_matches_a_local_run(tmp_path):
    profile = profile_for_the_test_node(tmp_path)
    local, cluster = tmp_path / "local", tmp_path / "slurm"
    local.mkdir()
    cluster.mkdir()
    snakemake(local, "--cores", "2")
    result = snakemake(cluster, "--profile", str(profile))
    log = result.stdout + result.stderr
    planned = planned_jobs(log)
    submissions = re.findall(r"has been submitted with SLURM jobid (\d+) \(log: .*?slurm_logs/rule_(\w+?)/", log)
    # every job but the local target rule went through sbatch, and all finished
    assert len(submissions) == planned["total"] - 1, log[-3000:]
    assert f"{planned['total']} of {planned['total']} steps (100%) done" in log
    # the GPU jobs asked SLURM for the GPU (finished jobs stay visible: MinJobAge)
    for job_id, rule in submissions:
        if rule in GPU_RULES:
            details = subprocess.run(["scontrol", "show", "job", "-d", job_id], capture_output=True, text=True).stdout
            assert re.search(r"JOB_GRES=gpu:1\b", details), details
            assert "JobState=COMPLETED" in details
    for path in (
        "results/synthetic/quality.tsv",
        "results/metrics/summary.tsv",
        *[f"results/metrics/{e}.tsv" for e in ("all_labels", "synthetic", "reference_only", "human")],
    ):
        a = pd.read_csv(local / path, sep="\t")
        b = pd.read_csv(cluster / path, sep="\t")
        assert list(a.columns) == list(b.columns) and len(a) == len(b), path
        for column in a.columns:
            if pd.api.types.is_numeric_dtype(a[column]):
                np.testing.assert_allclose(a[column], b[column], rtol=1e-6, atol=1e-9, err_msg=f"{path}:{column}")
            else:
                assert a[column].astype(str).tolist() == b[column].astype(str).tolist(), f"{path}:{column}"
    assert (cluster / "results/metrics/table1.md").is_file()
