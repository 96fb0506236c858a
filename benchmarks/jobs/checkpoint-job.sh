#!/bin/bash
#SBATCH --ntasks=1
#
# Benchmark job for scenario a (checkpoint-resume): UNITS units of work of
# SECONDS_PER_UNIT each (default 100 x 1 s), progress saved after every unit.
# An attempt resumes from the checkpoint file in CKPT_DIR, which the harness
# passes as an argument (a fresh directory per tool run), so slurm-escalate and
# slurm-longrun run this byte-identical script with the same arguments and
# neither depends on the other's environment variables.
#
#   checkpoint-job.sh CKPT_DIR [UNITS] [SECONDS_PER_UNIT]

set -eu

dir=$1
units=${2:-100}
seconds_per_unit=${3:-1}
mkdir -p "$dir"
ckpt="$dir/progress"

done_units=0
if [ -s "$ckpt" ]; then
    done_units=$(cat "$ckpt")
fi
echo "=== $(date '+%F %T') job ${SLURM_JOB_ID:-none}: resuming at unit ${done_units} of ${units}"

while [ "$done_units" -lt "$units" ]; do
    sleep "$seconds_per_unit"              # one unit of real work
    done_units=$((done_units + 1))
    echo "$done_units" > "$ckpt.tmp"       # write then rename: a kill never tears it
    mv "$ckpt.tmp" "$ckpt"
done

echo "=== $(date '+%F %T') job ${SLURM_JOB_ID:-none}: all ${units} units done"
