"""The SLURM profile: GPU requests in the plan, CycleGAN job groups, and the tiny workflow on
a real SLURM.

The group submission test runs the SLURM executor against a recording stand-in for sbatch
(no cluster needed). The run test needs a SLURM controller (CI starts a single-node one with
scripts/slurm/start-test-slurm.sh) and is skipped where none answers. Every job must be
submitted with sbatch and finish, the GPU requests included (the test node declares one gres
GPU), and the results must equal a local run's.
"""

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from helpers import ROOT, TINY, planned_jobs, snakemake

pytestmark = pytest.mark.slow  # the `snakemake` command with the SLURM profile

PROFILE = ROOT / "workflow" / "profiles" / "slurm"
GPU_RULES = ("train_cyclegan", "train_unet", "predict", "segment")


def slurm_is_up() -> bool:
    if not shutil.which("sinfo") or not shutil.which("sbatch"):
        return False
    result = subprocess.run(["sinfo", "-h", "-o", "%t"], capture_output=True, text=True, timeout=20)
    return result.returncode == 0 and any(s in result.stdout for s in ("idle", "mix", "alloc"))


def planned_groups(output: str) -> list[list[str]]:
    """The group jobs of a dry run, each as the list of its jobs' wildcards (a group's jobs
    are indented; the next job outside it starts a line with its time stamp)."""
    groups = []
    for block in output.split("] Group job ")[1:]:
        body = block.split("\n", 1)[1]
        end = re.search(r"^\[", body, re.M)
        groups.append(re.findall(r"^        wildcards: (\S+)", body[: end.start()] if end else body, re.M))
    return groups


def test_profile_asks_for_gpus_on_the_training_jobs(tmp_path):
    result = snakemake(tmp_path, "-n", "--profile", str(PROFILE))
    blocks = {b.split(":", 1)[0]: b for b in re.split(r"\n *rule ", result.stdout)}
    for rule in GPU_RULES:
        assert re.search(r"resources:.*\bgpu=1\b", blocks[rule]), blocks[rule]
        assert "cpus_per_task=4" in blocks[rule]
    assert "gpu=1" not in blocks["check_image"]


def test_profile_asks_for_a_gpu_for_pretraining(tmp_path):
    result = snakemake(tmp_path, "-n", "--profile", str(PROFILE), "--config", "cyclegan={init: pretrained}")
    blocks = {b.split(":", 1)[0]: b for b in result.stdout.split("\nrule ")}
    assert re.search(r"resources:.*\bgpu=1\b", blocks["pretrain_cyclegan"]), blocks["pretrain_cyclegan"]
    assert "cpus_per_task=4" in blocks["pretrain_cyclegan"]


def test_cyclegans_are_grouped_k_per_submission(tmp_path):
    """The profile's K (group-components cyclegans: 1) puts each train_cyclegan job in a group
    of its own; K = 2 on the command line puts both images of the tiny dataset in one."""
    default = snakemake(tmp_path, "-n", "--profile", str(PROFILE)).stdout
    assert sorted(planned_groups(default)) == [["image=04"], ["image=05"]]
    two = snakemake(tmp_path, "-n", "--profile", str(PROFILE), "--group-components", "cyclegans=2").stdout
    assert [sorted(g) for g in planned_groups(two)] == [["image=04", "image=05"]]
    assert planned_jobs(two)["train_cyclegan"] == 2
    # without the profile (local runs) every CycleGAN stays a group of one
    assert sorted(planned_groups(snakemake(tmp_path, "-n").stdout)) == [["image=04"], ["image=05"]]


RECORDING_SBATCH = """#!/bin/sh
# stands in for sbatch: records the arguments of every submission, answers with a job id
n=$(ls "$RECORD" | grep -c '^sbatch')
printf '%s\\n' "$@" > "$RECORD/sbatch.$((n + 1))"
echo $((1000 + n + 1))
"""


def test_one_submission_holds_k_cyclegans_and_asks_for_one_gpu(tmp_path):
    """With K = 2, the SLURM executor submits both train_cyclegan jobs of the tiny dataset in
    one sbatch call (a recording stand-in for sbatch; squeue, sacct, ... answer nothing).
    Because the plugin runs a group's jobs one after another, the profile scopes `gpu` per
    submission: the group asks for one GPU, one job's CPUs and memory, and both runtimes."""
    work = tmp_path / "work"
    work.mkdir()
    inputs = ["results/data/index.tsv", *(f"results/data/checked/{i:02d}.json" for i in range(1, 6))]
    snakemake(work, "--cores", "2", *inputs)  # the CycleGANs' inputs, locally
    stand_ins, record = tmp_path / "bin", tmp_path / "record"
    stand_ins.mkdir()
    record.mkdir()
    (stand_ins / "sbatch").write_text(RECORDING_SBATCH)
    for tool in ("squeue", "sacct", "scancel", "sinfo", "sacctmgr", "scontrol"):
        (stand_ins / tool).write_text("#!/bin/sh\nexit 0\n")
    for tool in stand_ins.iterdir():
        tool.chmod(0o755)
    env = {**os.environ, "PATH": f"{stand_ins}{os.pathsep}{os.environ['PATH']}", "RECORD": str(record)}
    command = [
        sys.executable, "-m", "snakemake", "--snakefile", str(ROOT / "Snakefile"), "--directory", str(work),
        "--configfile", str(TINY), "--profile", str(PROFILE), "--group-components", "cyclegans=2",
        "--slurm-status-command", "squeue", "--slurm-init-seconds-before-status-checks", "1",
        "results/cyclegan/04/generator.pt", "results/cyclegan/05/generator.pt",
    ]
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    def submitted_images() -> set[str]:
        texts = [path.read_text() for path in record.glob("sbatch.*")]
        return {image for text in texts for image in re.findall(r"train_cyclegan:image=(\d+)", text)}

    try:
        # wait until every planned train_cyclegan job is in a submission (then no second one
        # can follow: nothing is left to submit) or a second submission shows that they were
        # split; not for a fixed time
        deadline = time.monotonic() + 120
        while (submitted_images() != {"04", "05"} and len(list(record.glob("sbatch.*"))) < 2
               and time.monotonic() < deadline and process.poll() is None):
            time.sleep(0.2)
    finally:
        process.send_signal(signal.SIGINT)
        try:
            output = process.communicate(timeout=60)[0]
        except subprocess.TimeoutExpired:
            process.kill()
            output = process.communicate()[0]
    submissions = sorted(record.glob("sbatch.*"))
    assert len(submissions) == 1, output[-3000:]
    args = submissions[0].read_text().splitlines()
    options = dict(zip(args, args[1:]))
    assert "--gpus=1" in args and not any(a.startswith("--gres") for a in args)
    assert options["--mem"] == "16000"  # one job's memory (the profile's per-job 16000)
    assert "--cpus-per-task=4" in args  # one job's CPUs
    assert options["-t"] == "1440"  # two jobs of 720 min, one after the other
    assert "/group_cyclegans_train_cyclegan/" in options["--output"]
    wrap = next(a for a in args if a.startswith("--wrap="))
    assert sorted(re.findall(r"train_cyclegan:image=(\d+)", wrap)) == ["04", "05"]


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
def test_tiny_workflow_through_slurm_matches_a_local_run(tmp_path, tiny_run):
    profile = profile_for_the_test_node(tmp_path)
    local, cluster = tiny_run, tmp_path / "slurm"  # local: the session's run of the same config
    cluster.mkdir()
    result = snakemake(cluster, "--profile", str(profile))
    log = result.stdout + result.stderr
    planned = planned_jobs(log)
    submissions = re.findall(
        r"has been submitted with SLURM jobid (\d+) \(log: .*?slurm_logs/(?:rule_|group_cyclegans_)(\w+?)/", log
    )
    # every job but the local target rule went through sbatch (each CycleGAN in a group of its
    # own: the profile's K is 1), and all finished
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
