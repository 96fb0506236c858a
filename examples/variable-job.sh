#!/bin/bash
#SBATCH --job-name=variable
#SBATCH --output=variable-%a.out
#SBATCH --ntasks=1
#
# Demo job for examples/ladder.yaml (level 0: devel 400M / 1 min,
# level 1: day 1000M / 2 min, level 2: week 3000M / 4 min).
# What each array index does:
#   3, 7   hold 600 MiB of memory  -> OUT_OF_MEMORY at level 0, completes at level 1
#   5, 10  run for 100 seconds     -> TIMEOUT at level 0, completes at level 1
#   9      exit 3 (a bug)          -> FAILED, not retried: more resources won't help
#   others finish in a few seconds -> COMPLETED at level 0
#
# Run it (from the repository root):
#   sbatch_escalate --config examples/ladder.yaml --array=0-11 examples/variable-job.sh
#
# slurm-escalate resubmits a failed task under its original array index with
# --open-mode=append, so variable-<index>.out collects the output of every attempt.

set -u

idx=${SLURM_ARRAY_TASK_ID:-0}
# The first attempt has no SLURM_ESCALATE_INITIAL_JOB_ID: it IS the initial job.
initial=${SLURM_ESCALATE_INITIAL_JOB_ID:-${SLURM_ARRAY_JOB_ID:-${SLURM_JOB_ID:-none}}}

echo "=== $(date '+%F %T') task ${idx}: attempt ${SLURM_ESCALATE_ATTEMPT:-1}" \
     "level ${SLURM_ESCALATE_LEVEL:-none} chain ${SLURM_ESCALATE_CHAIN_ID:-none}" \
     "job ${SLURM_JOB_ID:-none} initial ${initial}" \
     "partition ${SLURM_JOB_PARTITION:-none} mem ${SLURM_MEM_PER_NODE:-?}M node $(hostname)"

# Really allocate (and touch) N MiB, so the cgroup limit is hit for real.
use_memory() {
    python3 - "$1" <<'PY'
import sys
import time

mib = int(sys.argv[1])
block = bytearray(mib * 1024 * 1024)
for i in range(0, len(block), 4096):  # touch every page: untouched pages cost nothing
    block[i] = 1
print(f"holding {mib} MiB", flush=True)
time.sleep(2)
PY
}

case "$idx" in
    3 | 7)
        echo "task ${idx}: needs 600 MiB"
        use_memory 600 || { echo "task ${idx}: memory step failed ($?)"; exit 1; }
        ;;
    5 | 10)
        # Over level 0's minute even with Slurm's grace before the kill (the
        # TIMEOUT lands up to ~35 s late), well within level 1's two minutes.
        echo "task ${idx}: needs 100 seconds"
        sleep 100
        ;;
    9)
        echo "task ${idx}: hits a bug and exits 3" >&2
        exit 3
        ;;
    *)
        sleep $((2 + idx % 3))
        ;;
esac

echo "=== $(date '+%F %T') task ${idx}: done"
