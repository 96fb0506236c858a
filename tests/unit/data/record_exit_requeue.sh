#!/usr/bin/env bash
# record_exit_requeue.sh RELEASE OUTDIR WORKDIR: records, beside record.sh's files, how sacct shows exit
# statuses above 128 and a job that `scontrol requeue` ran twice. Run as root inside the cluster's
# environment, like record.sh (from the checkout):
#   bash tests/unit/data/record_exit_requeue.sh 22.05 "$PWD/tests/unit/data/22.05" /tmp/rec-22.05
#   bash docker-cluster/chroot.sh run 24.11 -- bash "$PWD/tests/unit/data/record_exit_requeue.sh" 24.11 "$PWD/tests/unit/data/24.11" /root/rec
# About 3 minutes: Slurm holds a requeued job for about two minutes (BeginTime) before it runs again.
# Writes sacct_exit_codes, sacct_requeued, sacct_requeued_duplicates (NAME.txt + NAME.cmd) and replaces
# the "## Exit codes and requeue" section at the end of OUTDIR/COMMANDS.md.
set -euo pipefail
REL=$1 OUT=$2 W=$3
mkdir -p "$OUT" "$W"
cd "$W"
F=JobID,JobIDRaw,State,ExitCode,MaxRSS,Elapsed,Timelimit,Start,End,NodeList,Partition,ReqMem,JobName
export SLURM_TIME_FORMAT=standard SLURM_BITSTR_LEN=0   # as slurm_escalate.slurm.client.query_env()
VERSION=$(sinfo -V)

printf '#!/bin/bash\nexit 137\n' > e137.sh     # what bash exits with when its child is SIGKILLed
printf '#!/bin/bash\nexit 9\n' > e9.sh
printf '#!/bin/bash\nkill -9 $$\n' > k9.sh      # the batch script itself dies of SIGKILL
printf '#!/bin/bash\nsleep 8\necho done\n' > rq.sh
chmod +x e137.sh e9.sh k9.sh rq.sh

ROWS=$(mktemp)
rec() {  # rec NAME DESCRIPTION CMD...: as record.sh
  local name=$1 desc=$2; shift 2
  "$@" > "$OUT/$name.txt"
  { echo "$*"; echo "# $desc"; echo "# $VERSION"; } > "$OUT/$name.cmd"
  local cmd="$*"
  # shellcheck disable=SC2016  # the backquotes are Markdown's
  printf '| `%s.txt` | `%s` — %s |\n' "$name" "${cmd//|/\\|}" "$desc" >> "$ROWS"
}

declare -A ID
for s in e137 e9 k9; do
  ID[$s]=$(sbatch --parsable -p devel -t 1 --mem=50M -J "b_$s" "$s.sh")
done
R=$(sbatch --parsable --requeue -p devel -t 1 --mem=50M -J b_rq rq.sh)
for ((i = 0; i < 60; i++)); do [ "$(squeue -h -j "$R" -o %T)" = RUNNING ] && break; sleep 1; done
sleep 2
scontrol requeue "$R"
for ((i = 0; i < 150; i++)); do
  [ "$(sacct -X -n -P -o State -j "$R" | tail -n 1)" = COMPLETED ] && break
  sleep 2
done
sleep 5   # let slurmdbd receive the last step records
EXIT_IDS="${ID[e137]},${ID[e9]},${ID[k9]}"
rec sacct_exit_codes "jobs $EXIT_IDS: exit 137, exit 9, kill -9 \$\$" \
  sacct --noheader --parsable2 "--format=$F" "--jobs=$EXIT_IDS"
rec sacct_requeued "job $R, requeued once while running by scontrol requeue, then COMPLETED: as the monitor asks" \
  sacct --noheader --parsable2 "--format=$F" "--jobs=$R"
rec sacct_requeued_duplicates "job $R again, with --duplicates: every run" \
  sacct --noheader --parsable2 --duplicates "--format=$F" "--jobs=$R"

MD="$OUT/COMMANDS.md"
touch "$MD"
sed -i '/^## Exit codes and requeue/,$d' "$MD"
{
  echo "## Exit codes and requeue"
  echo
  echo "Made $(date -u +%Y-%m-%dT%H:%M:%SZ) by \`tests/unit/data/record_exit_requeue.sh $REL OUTDIR $W\`, $VERSION."
  echo
  for s in e137 e9 k9; do
    echo "- job ${ID[$s]} (\`b_$s\`): \`sbatch --parsable -p devel -t 1 --mem=50M -J b_$s $s.sh\`, $s.sh: \`$(tail -n 1 "$s.sh")\`"
  done
  echo "- job $R (\`b_rq\`): \`sbatch --parsable --requeue -p devel -t 1 --mem=50M -J b_rq rq.sh\` (sleep 8), then \`scontrol requeue $R\` 2 s after it started"
  echo
  echo "| file | command — what |"
  echo "|---|---|"
  cat "$ROWS"
} >> "$MD"
rm -f "$ROWS"
echo "recorded $VERSION into $OUT: exit-code jobs $EXIT_IDS, requeued job $R"
