#!/usr/bin/env bash
# The GPU measurements of issue 12, one call per visit, everything written under $OUT.
#
# On the CPU machine, once (needs the network; fills .device/, which git ignores):
#   bash scripts/gpu_check.sh prepare
#     = ../shared/device/prepare.sh (snakemake and jsonschema wheels for the GPU image's Python
#       3.12, a copy of DRIVE, prelude.sh), run in a scratch git repository because that script
#       needs .git to be a folder (in a git worktree it is a file), then moved here.
# On the GPU machine, from the project root, with .device sent along (device tool: carry
# [".device"]), each in one call:
#   bash scripts/gpu_check.sh pieces   # visit 1 (~7 min): CUDA tests; both networks' steps per
#                                      # precision, eager and compiled; K = 1, 2, 4, 8 processes
#   bash scripts/gpu_check.sh drive    # visit 2 (<= 9 min): config/drive-gpu.yaml on DRIVE from
#                                      # an empty results folder: wall time, per-rule times, Table 1
# Rehearsal of the plumbing on a CPU (tiny settings, aot_eager compilation, no CUDA tests run;
# the drive part on the tiny phantom config; tests/test_benchmark_training.py runs the first):
#   GPU_CHECK_TINY=1 OUT=/tmp/gpu-check bash scripts/gpu_check.sh pieces
#   GPU_CHECK_CONFIG=tests/data/tiny.yaml CORES=2 OUT=/tmp/gpu-check bash scripts/gpu_check.sh drive
#
# Time limits in seconds (their sum stays well under the visit's limit, as the device README
# asks): TESTS_S (100), MODES_S (180), SHARE_S (120), DRIVE_S (540). Every part writes its
# results as it goes, so a part cut by its limit still leaves what it measured.
set -uo pipefail
cd "$(dirname "$0")/.."
what=${1:-pieces}
out=${OUT:-$PWD/gpu-check-out}
mkdir -p "$out"
say() { echo "[$(date +%H:%M:%S)] $*" | tee -a "$out/record.txt"; }

if [ "$what" = prepare ]; then
    here=$PWD
    scratch=$(mktemp -d)
    git init -q "$scratch/project" && (cd "$scratch/project" && bash "$here/../shared/device/prepare.sh") || exit 1
    rm -rf .device && mv "$scratch/project/.device" .device && rm -rf "$scratch"
    echo "prepared $here/.device: $(ls .device/wheels | wc -l) wheels, $(du -sh .device | cut -f1)"
    exit 0
fi

if [ -f .device/prelude.sh ]; then
    # shellcheck disable=SC1091
    source .device/prelude.sh >> "$out/record.txt" 2>&1 || say "prelude failed (see above)"
fi
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
say "gpu_check $what; commit $(git rev-parse HEAD 2>/dev/null || echo unknown)"
{
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>/dev/null || echo "no nvidia-smi"
    python -c 'import torch; print("torch", torch.__version__, "CUDA", torch.version.cuda, "available", torch.cuda.is_available(), torch.cuda.get_device_name() if torch.cuda.is_available() else "")'
} >> "$out/record.txt" 2>&1

case $what in
pieces)
    if [ "${GPU_CHECK_TINY:-0}" = 1 ]; then
        bench=(--configfile tests/data/tiny_benchmark.yaml --sizes preset --device cpu
               --compile-backend aot_eager --window-seconds 1 --share 1,2)
        modes=float32,bfloat16  # compiled modes on the CPU: tests/test_benchmark_training.py
    else
        bench=(--configfile config/drive-gpu.yaml --sizes paper --device cuda --window-seconds 3 --share 1,2,4,8)
        # eager first (every precision), then compiled in the likeliest best modes
        modes=float32,tf32,bfloat16,float16,bfloat16+reduce-overhead,tf32+reduce-overhead,float32+reduce-overhead
    fi

    say "CUDA tests (test_cyclegan, test_unet: -k cuda), limit ${TESTS_S:-100} s"
    timeout -k 10 "${TESTS_S:-100}" python -m pytest -q -rA -p no:cacheprovider tests/test_cyclegan.py \
        tests/test_unet.py -k cuda > "$out/tests.txt" 2>&1
    say "CUDA tests exit $?: $(tail -1 "$out/tests.txt")"

    say "steps per mode ($modes), limit ${MODES_S:-180} s"
    timeout -k 10 "${MODES_S:-180}" python scripts/benchmark_training.py "${bench[@]}" --sections modes \
        --modes "$modes" --out "$out/modes.md" > "$out/modes.log" 2>&1
    say "modes exit $?"

    share_mode=float32
    [ -s "$out/modes.json" ] && share_mode=$out/modes.json
    say "K processes sharing the device (mode: fastest CycleGAN step in $share_mode), limit ${SHARE_S:-120} s"
    timeout -k 10 "${SHARE_S:-120}" python scripts/benchmark_training.py "${bench[@]}" --sections share \
        --share-mode "$share_mode" --out "$out/share.md" > "$out/share.log" 2>&1
    say "share exit $?"
    cat "$out/modes.md" "$out/share.md" 2>/dev/null
    ;;
drive)
    drive=${DRIVE_DIR:-../shared/data/DRIVE}
    work=${DRIVE_WORK:-/tmp/cyclesynth-drive-gpu}
    config=${GPU_CHECK_CONFIG:-config/drive-gpu.yaml}
    say "$config on $drive in $work, snakemake --cores ${CORES:-16}, limit ${DRIVE_S:-540} s"
    started=$(date +%s)
    timeout -k 10 -s INT "${DRIVE_S:-540}" python scripts/benchmark_drive.py --drive "$drive" \
        --configfile "$config" --out "$work" --cores "${CORES:-16}" --force > "$out/drive.txt" 2>&1
    code=$?
    say "drive exit $code after $(($(date +%s) - started)) s (wall time from outside)"
    cp "$work/benchmark.md" "$work/snakemake.log" "$out/" 2>/dev/null
    cp "$work/results/metrics/table1.md" "$work/results/metrics/summary.tsv" "$out/" 2>/dev/null
    (cd "$work" && tar czf "$out/drive-results.tgz" results/metrics results/benchmarks results/logs \
        results/synthetic/quality.tsv results/cyclegan/*/history.tsv 2>/dev/null)
    cat "$out/benchmark.md" 2>/dev/null || tail -30 "$out/snakemake.log" 2>/dev/null
    ;;
*)
    echo "usage: bash scripts/gpu_check.sh prepare|pieces|drive" >&2
    exit 2
    ;;
esac
say "done"
