#!/usr/bin/env bash
# Stop what start-test-slurm.sh started, by its recorded pids only (never by name).
set -u
DIR=${SLURM_TEST_DIR:-/var/lib/cyclesynth-slurm}

# End jobs still queued or running first: their job steps would outlive slurmd.
if [ -s "$DIR/run/slurmctld.pid" ] && kill -0 "$(cat "$DIR/run/slurmctld.pid")" 2>/dev/null; then
    jobs=$(squeue -h -o %A 2>/dev/null || true)
    if [ -n "$jobs" ]; then
        scancel $jobs 2>/dev/null || true
        for _ in $(seq 40); do [ -z "$(squeue -h -o %A 2>/dev/null)" ] && break; sleep 0.25; done
    fi
fi

stop() {
    local pidfile="$DIR/run/$1.pid" pid name
    [ -s "$pidfile" ] || return 0
    pid=$(cat "$pidfile")
    name=$(cat "/proc/$pid/comm" 2>/dev/null || true)
    if [ "$name" != "$1" ]; then  # gone already, or the pid now belongs to another process
        rm -f "$pidfile"
        return 0
    fi
    kill -TERM "$pid"
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
    rm -f "$pidfile"
    echo "stopped $1 ($pid)"
}

stop slurmd
stop slurmctld
stop munged

# Remove the configuration this test cluster wrote (only ours, marked by its first line): with
# a slurm.conf naming a controller that is no longer running, every `snakemake` start waits
# ~9 s while the SLURM executor plugin's import tries to reach it.
for conf in /etc/slurm/slurm.conf /etc/slurm/gres.conf; do
    if [ -f "$conf" ] && head -n 1 "$conf" | grep -q "^# written by cyclesynth scripts/slurm/start-test-slurm.sh"; then
        rm -f "$conf"
        echo "removed $conf"
    fi
done
