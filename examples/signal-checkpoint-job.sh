#!/bin/bash
#SBATCH --job-name=signal-checkpoint
#SBATCH --output=signal-checkpoint-%a.out
#SBATCH --open-mode=append
#SBATCH --ntasks=1
#SBATCH --signal=B:USR1@10
#
# A job that saves its state when Slurm warns it that its time is nearly up.
# It does UNITS units of work (SECONDS_PER_UNIT each) and keeps its progress in
# memory; it writes the checkpoint only when it is told to stop (or at the end),
# as a job whose state is expensive to save would. The next attempt resumes
# from the checkpoint. Use it with examples/ladder-signal.yaml:
#
#   sbatch_escalate --config examples/ladder-signal.yaml --array=0-1 \
#       examples/signal-checkpoint-job.sh 14 5
#
# Arguments: UNITS (default 14) and SECONDS_PER_UNIT (default 5). 14 x 5 s is
# more than a 1-minute level can hold, so each task is checkpointed at least
# once and ends COMPLETED on its second, third or fourth attempt.
#
# How it works, and the pitfalls it avoids:
#
# * --signal=B:USR1@10: Slurm sends SIGUSR1 to the batch shell (B: only the
#   shell, not its children) 10 s or more before the time limit. slurmctld sends
#   it from its time-limit sweep, which runs every 30 s, at the first sweep that
#   is within 10 + 30 s of the limit: so 10-40 s before a 1-minute limit, i.e.
#   20-50 s after the start. A larger @N sends it earlier still: with @30 or more
#   on a 1-minute limit the first sweep, possibly right at the start, sends it,
#   and an attempt could stop before doing any work. Choose N at least as long as
#   the unit in flight plus the save take, and small next to the time limit.
# * bash runs a trap only when the foreground command returns. The work runs in
#   the background and the shell waits for it with `wait`, which USR1 interrupts
#   at once; the trap sets a flag, the shell then waits for the unit in flight
#   to finish (so no work is lost), saves, and stops.
# * "Saved, not finished" must not look like success. A job that exits 0 after
#   saving ends COMPLETED, and slurm-escalate would stop the chain there with
#   the work unfinished. This job exits 75 (EX_TEMPFAIL in sysexits.h: "try
#   again later"), which examples/ladder-signal.yaml maps to `resubmit`: the
#   task comes back at the same level at once, and ends COMPLETED only when all
#   units are done. Exiting at once instead of running on into TIMEOUT also
#   frees the node 10-40 s before the limit, and sacct shows exactly why each
#   attempt ended (FAILED 75:0 = saved, not finished). A TIMEOUT still means
#   "stopped without saving" (the signal came too late for the save).
#   Slurm's own requeue (`scontrol requeue`) is the other way back to the same
#   level; README.md, "Writing a job that checkpoints", says when to use it.
# * The checkpoint is keyed by SLURM_ESCALATE_CHAIN_ID (the same for every
#   attempt of a chain) and the task index, written to a temporary file and
#   renamed, so a kill during the save never leaves a torn checkpoint.
#
# Without slurm-escalate the job still runs (`sbatch --array=0-1
# examples/signal-checkpoint-job.sh`): it keys its checkpoint by its own job id
# and an attempt that saved ends FAILED with exit code 75.

set -eu

units=${1:-14}
seconds_per_unit=${2:-5}
SAVED_NOT_FINISHED=75 # the ladder maps this exit code to `resubmit`

idx=${SLURM_ARRAY_TASK_ID:-single}
key=${SLURM_ESCALATE_CHAIN_ID:-${SLURM_ARRAY_JOB_ID:-${SLURM_JOB_ID:-manual}}}
dir=${CHECKPOINT_DIR:-checkpoints}
mkdir -p "$dir"
ckpt="$dir/${key}-${idx}.state"

say() { echo "$(date '+%F %T') task ${idx}: $*"; }

save() {
    echo "$1" > "$ckpt.tmp"
    mv "$ckpt.tmp" "$ckpt"
}

done_units=0
if [ -s "$ckpt" ]; then
    done_units=$(cat "$ckpt")
fi

stop=0        # USR1 arrived: save and exit after the unit in flight
interrupted=0 # USR1 arrived during the current `wait`
trap 'stop=1; interrupted=1; say "got USR1 (time limit near) during unit $((done_units + 1))"' USR1

say "=== attempt ${SLURM_ESCALATE_ATTEMPT:-1} level ${SLURM_ESCALATE_LEVEL:-none}" \
    "chain ${SLURM_ESCALATE_CHAIN_ID:-none} job ${SLURM_JOB_ID:-none}:" \
    "resuming at unit ${done_units} of ${units}"

while [ "$done_units" -lt "$units" ]; do
    if [ "$stop" = 1 ]; then
        save "$done_units"
        say "saved checkpoint at unit ${done_units} of ${units}: not finished," \
            "exiting ${SAVED_NOT_FINISHED}"
        exit "$SAVED_NOT_FINISHED"
    fi
    sleep "$seconds_per_unit" & # one unit of real work, in the background
    unit=$!
    interrupted=0
    rc=0
    wait "$unit" || rc=$? # returns 128+10 as soon as USR1 arrives ...
    while [ "$rc" -gt 128 ] && [ "$interrupted" = 1 ]; do
        interrupted=0 # ... then finish the unit in flight
        rc=0
        wait "$unit" || rc=$?
    done
    if [ "$rc" -ne 0 ]; then
        say "unit $((done_units + 1)) failed with status ${rc}"
        exit 1 # a real error: the ladder does not retry it
    fi
    done_units=$((done_units + 1))
    say "finished unit ${done_units}/${units}"
done

save "$done_units"
say "=== all ${units} units done"
