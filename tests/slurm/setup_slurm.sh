#!/usr/bin/env bash
# Start a one-node SLURM cluster on this machine (root; Debian 12): slurmctld + slurmd + munge, two fake GPUs
# declared as a GRES on loop devices, partitions "cpu" (default) and "gpu". Idempotent: installs packages only
# when missing, rewrites the config, restarts the daemons. PIDs go to $STATE_DIR/*.pid for stop_slurm.sh.
set -euo pipefail
STATE_DIR=${1:-/tmp/brainalign-slurm}
mkdir -p "$STATE_DIR"
if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null || ! command -v sbatch >/dev/null; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends slurmd slurmctld slurm-client munge >/dev/null
fi
"$(dirname "$0")/stop_slurm.sh" "$STATE_DIR" >/dev/null 2>&1 || true

# daemons left over from an earlier start of this script (their pid files are in /run): stop them first
for pidfile in /run/slurm/slurmd.pid /run/slurm/slurmctld.pid /run/munge/munged.pid; do
  [ -f "$pidfile" ] && kill "$(cat "$pidfile")" 2>/dev/null && sleep 1
done
install -d -o munge -g munge -m 0755 /run/munge
[ -f /etc/munge/munge.key ] || { dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 2>/dev/null; chown munge:munge /etc/munge/munge.key; chmod 400 /etc/munge/munge.key; }
runuser -u munge -- /usr/sbin/munged --force --pid-file=/run/munge/munged.pid
cp /run/munge/munged.pid "$STATE_DIR/munged.pid"

HOST=$(hostname -s)
CPUS=$(nproc)
MEM=$(awk '/MemTotal/ {printf "%d", $2 / 1024 * 0.8}' /proc/meminfo)
for i in 0 1; do [ -e /dev/loop$i ] || mknod /dev/loop$i b 7 $i; done
install -d -o slurm -g slurm /var/spool/slurmctld /var/spool/slurmd /var/log/slurm /run/slurm
cat > /etc/slurm/slurm.conf <<CONF
ClusterName=brainalign-test
SlurmctldHost=$HOST
SlurmUser=slurm
SlurmctldPidFile=/run/slurm/slurmctld.pid
SlurmdPidFile=/run/slurm/slurmd.pid
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=500
MinJobAge=600
ReturnToService=2
GresTypes=gpu
NodeName=$HOST CPUs=$CPUS RealMemory=$MEM Gres=gpu:2 State=UNKNOWN
PartitionName=cpu Nodes=$HOST Default=YES MaxTime=INFINITE State=UP
PartitionName=gpu Nodes=$HOST MaxTime=INFINITE State=UP
CONF
echo "NodeName=$HOST Name=gpu File=/dev/loop[0-1]" > /etc/slurm/gres.conf
/usr/sbin/slurmctld
/usr/sbin/slurmd
for _ in $(seq 60); do
  if sinfo -h -o %T 2>/dev/null | grep -q idle; then
    cp /run/slurm/slurmctld.pid "$STATE_DIR/slurmctld.pid"; cp /run/slurm/slurmd.pid "$STATE_DIR/slurmd.pid"
    echo "slurm up on $HOST"; exit 0
  fi
  sleep 1
done
echo "slurm did not become idle; see /var/log/slurm" >&2
exit 1
