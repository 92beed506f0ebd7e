#!/usr/bin/env bash
# Stop the daemons started by setup_slurm.sh, by the process ids it recorded.
STATE_DIR=${1:-/tmp/brainalign-slurm}
for name in slurmd slurmctld munged; do
  pidfile="$STATE_DIR/$name.pid"
  [ -f "$pidfile" ] || continue
  pid=$(cat "$pidfile")
  kill "$pid" 2>/dev/null && for _ in $(seq 20); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
  rm -f "$pidfile"
done
