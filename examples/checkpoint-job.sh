#!/bin/bash
#SBATCH --job-name=checkpoint
#SBATCH --output=checkpoint-%a.out
#SBATCH --ntasks=1
#
# A job that survives its time limit by checkpointing: it does UNITS units of
# work (SECONDS_PER_UNIT each), saves its progress after every unit, and on the
# next attempt resumes where the last one stopped. Use it with a ladder whose
# TIMEOUT action is "resubmit" (examples/ladder-checkpoint.yaml): a timed-out
# task comes back at the same level and carries on instead of starting over.
#
# Run it (from the repository root):
#   sbatch_escalate --config examples/ladder-checkpoint.yaml --array=0-1 \
#       examples/checkpoint-job.sh 24 5
#
# Arguments: UNITS (default 24) and SECONDS_PER_UNIT (default 5). With a
# 1-minute level, 24 x 5 s = 2 minutes of work needs two or three attempts.

set -eu

units=${1:-24}
seconds_per_unit=${2:-5}
idx=${SLURM_ARRAY_TASK_ID:-single}
# The chain id stays the same for every attempt; without slurm-escalate fall
# back to the job's own id (then every sbatch starts from scratch).
key=${SLURM_ESCALATE_CHAIN_ID:-${SLURM_ARRAY_JOB_ID:-${SLURM_JOB_ID:-manual}}}
dir=${CHECKPOINT_DIR:-checkpoints}
mkdir -p "$dir"
ckpt="$dir/${key}-${idx}.ckpt"

done_units=0
if [ -s "$ckpt" ]; then
    done_units=$(cat "$ckpt")
fi
echo "=== $(date '+%F %T') task ${idx}: attempt ${SLURM_ESCALATE_ATTEMPT:-1}" \
     "level ${SLURM_ESCALATE_LEVEL:-none} chain ${SLURM_ESCALATE_CHAIN_ID:-none}" \
     "job ${SLURM_JOB_ID:-none}: resuming at unit ${done_units} of ${units}"

while [ "$done_units" -lt "$units" ]; do
    sleep "$seconds_per_unit"              # one unit of real work
    done_units=$((done_units + 1))
    # Write then rename, so a kill in the middle never leaves a torn checkpoint.
    echo "$done_units" > "$ckpt.tmp"
    mv "$ckpt.tmp" "$ckpt"
    echo "task ${idx}: finished unit ${done_units}/${units}"
done

echo "=== $(date '+%F %T') task ${idx}: all ${units} units done"
