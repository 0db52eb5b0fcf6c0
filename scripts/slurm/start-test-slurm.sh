#!/usr/bin/env bash
# Install and start a single-node SLURM on this machine, for the workflow's SLURM tests.
#
# One node (this host: its cores and memory), one partition, and one GPU declared as a
# generic resource (gres) backed by /dev/null, so that jobs asking for a GPU can be
# scheduled on machines without one. The daemons are started in the foreground of their
# own sessions and their pids recorded, so that stop-test-slurm.sh stops exactly them.
# Needs root (apt-get, daemons). Debian/Ubuntu without systemd (containers, CI).
#
# Environment:
#   SLURM_TEST_DIR      state, logs and pid files (default /var/lib/cyclesynth-slurm)
#   SLURM_TEST_CPUS     CPUs the node declares (default: 2 x nproc, so that several
#                       single-thread jobs run side by side)
#   SLURM_SKIP_INSTALL  1 = packages are already installed
set -euo pipefail

[ "$(id -u)" -eq 0 ] || { echo "start-test-slurm.sh: must run as root" >&2; exit 1; }

DIR=${SLURM_TEST_DIR:-/var/lib/cyclesynth-slurm}
NODE=$(hostname -s)
CPUS=${SLURM_TEST_CPUS:-$(( $(nproc) * 2 ))}
MEMORY=$(( $(awk '/^MemTotal:/ {print int($2 / 1024)}' /proc/meminfo) * 9 / 10 ))

if [ "${SLURM_SKIP_INSTALL:-0}" != 1 ]; then
    export DEBIAN_FRONTEND=noninteractive
    # Keep the packages' install scripts from starting daemons of their own.
    policy_added=0
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
        chmod 755 /usr/sbin/policy-rc.d
        policy_added=1
    fi
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends munge slurmctld slurmd slurm-client >/dev/null
    [ "$policy_added" = 1 ] && rm -f /usr/sbin/policy-rc.d
fi

for daemon in munged slurmctld slurmd; do
    pidfile="$DIR/run/$daemon.pid"
    if [ -s "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
        echo "start-test-slurm.sh: $daemon already runs (pid $(cat "$pidfile")); stop it first" >&2
        exit 1
    fi
done
mkdir -p "$DIR"/{run,log,state,spool} /etc/slurm

# munge: the authentication daemon SLURM's daemons and clients share.
if [ ! -s /etc/munge/munge.key ]; then
    mkdir -p /etc/munge
    dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
fi
chown munge:munge /etc/munge/munge.key
chmod 400 /etc/munge/munge.key
mkdir -p /run/munge /var/lib/munge /var/log/munge
chown munge:munge /run/munge /var/lib/munge /var/log/munge
chmod 755 /run/munge

# A gres GPU needs a File= (without it slurmd registers 0 GPUs and the node goes INVAL).
printf "# written by cyclesynth scripts/slurm/start-test-slurm.sh\nNodeName=%s Name=gpu File=/dev/null\n" "$NODE" > /etc/slurm/gres.conf
overrides=""
[ "$CPUS" -gt "$(nproc)" ] && overrides="SlurmdParameters=config_overrides"
cat > /etc/slurm/slurm.conf <<CONF
# written by cyclesynth scripts/slurm/start-test-slurm.sh
ClusterName=cyclesynth-test
SlurmctldHost=$NODE(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/run/slurmctld.pid.conf
SlurmdPidFile=$DIR/run/slurmd.pid.conf
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MailProg=/bin/true
MpiDefault=none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=256
ReturnToService=2
# No accounting database: Snakemake's SLURM plugin asks squeue for job states, and only
# keeps doing so when finished jobs stay visible long enough (MinJobAge).
MinJobAge=600
SlurmctldTimeout=30
SlurmdTimeout=30
InactiveLimit=0
KillWait=5
Waittime=0
GresTypes=gpu
$overrides
NodeName=$NODE NodeAddr=127.0.0.1 CPUs=$CPUS RealMemory=$MEMORY Gres=gpu:1 State=UNKNOWN
PartitionName=debug Nodes=$NODE Default=YES MaxTime=INFINITE State=UP
CONF
chmod 644 /etc/slurm/slurm.conf

# setsid: each daemon leads its own session, so $! is its pid and a CI step that kills its
# own process group does not take the daemons with it.
setsid setpriv --reuid=munge --regid=munge --init-groups \
    /usr/sbin/munged --foreground --force > "$DIR/log/munged.out" 2>&1 &
echo $! > "$DIR/run/munged.pid"
for _ in $(seq 50); do munge -n < /dev/null 2>/dev/null | unmunge > /dev/null 2>&1 && break; sleep 0.2; done
munge -n < /dev/null | unmunge > /dev/null || { echo "munge does not work" >&2; cat "$DIR/log/munged.out" >&2; exit 1; }

setsid /usr/sbin/slurmctld -D -c > "$DIR/log/slurmctld.out" 2>&1 &
echo $! > "$DIR/run/slurmctld.pid"
for _ in $(seq 100); do scontrol ping > /dev/null 2>&1 && break; sleep 0.2; done
scontrol ping | grep -q UP || { echo "slurmctld did not come up" >&2; tail -n 40 "$DIR/log/slurmctld.log" >&2; exit 1; }

setsid /usr/sbin/slurmd -D -N "$NODE" > "$DIR/log/slurmd.out" 2>&1 &
echo $! > "$DIR/run/slurmd.pid"
state=""
for _ in $(seq 120); do
    state=$(sinfo -h -n "$NODE" -o %t 2>/dev/null | head -n 1)
    case "$state" in idle | mix | alloc | inval | drain*) break ;; esac
    sleep 0.5
done
if [ "$state" != idle ]; then
    echo "node $NODE is '$state', not idle" >&2
    sinfo -R >&2
    tail -n 30 "$DIR/log/slurmd.log" "$DIR/log/slurmctld.log" >&2
    exit 1
fi
echo "test SLURM is up: node $NODE, $CPUS CPUs, $MEMORY MB, 1 gres GPU, partition debug"
