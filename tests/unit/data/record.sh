#!/usr/bin/env bash
# record.sh RELEASE OUTDIR WORKDIR: records real Slurm outputs for the parser tests. Run as root *inside*
# the cluster's environment, from the checkout: on the host for 22.05,
#   bash tests/unit/data/record.sh 22.05 "$PWD/tests/unit/data/22.05" /tmp/rec-22.05
# or for 24.11/26.05 through the chroot (which bind-mounts the checkout at the same path):
#   bash docker-cluster/chroot.sh run 24.11 -- bash "$PWD/tests/unit/data/record.sh" 24.11 "$PWD/tests/unit/data/24.11" /root/rec
# OUTDIR is tests/unit/data/RELEASE, which tests/unit/test_releases.py picks up by itself.
# About 2 minutes (the TIMEOUT job). Writes NAME.txt + NAME.cmd pairs and COMMANDS.md into OUTDIR.
set -euo pipefail
REL=$1 OUT=$2 W=$3
mkdir -p "$OUT" "$W"
cd "$W"
F=JobID,JobIDRaw,State,ExitCode,MaxRSS,Elapsed,Timelimit,Start,End,NodeList,Partition,ReqMem,JobName
SACCT=(sacct --noheader --parsable2 "--format=$F")
# as slurm_escalate.slurm.client.query_env(): ISO times, array specs never cut
export SLURM_TIME_FORMAT=standard SLURM_BITSTR_LEN=0
VERSION=$(sinfo -V)
TOKEN=slurm-escalate:rec$(date +%s)

cat > short.sh <<'S'
#!/bin/bash
echo ok
S
cat > sleep.sh <<'S'
#!/bin/bash
sleep 200
S
cat > oom.sh <<'S'
#!/bin/bash
case "$SLURM_ARRAY_TASK_ID" in
  1) python3 -c 'b = bytearray(300 * 1024 * 1024); [b.__setitem__(i, 1) for i in range(0, len(b), 4096)]; print("survived")' ;;
  2) echo failing; exit 3 ;;
  *) echo ok ;;
esac
S
chmod +x short.sh sleep.sh oom.sh

MD="$OUT/COMMANDS.md" ROWS=$(mktemp)
START=$(date +%Y-%m-%dT%H:%M:%S)
rec() {  # rec NAME DESCRIPTION CMD...: stdout of CMD to NAME.txt, the command to NAME.cmd and COMMANDS.md
  local name=$1 desc=$2; shift 2
  "$@" > "$OUT/$name.txt"
  { echo "$*"; echo "# $desc"; echo "# $VERSION"; } > "$OUT/$name.cmd"
  local cmd="$*"
  # shellcheck disable=SC2016  # the backquotes are Markdown's
  printf '| `%s.txt` | `%s` — %s |\n' "$name" "${cmd//|/\\|}" "$desc" >> "$ROWS"
}

# submissions; sbatch --parsable output is recorded for the first one
rec sbatch_parsable "submits the COMPLETED job (its output is the job id)" \
  sbatch --parsable -p devel -t 1 --mem=50M -J completed_cap "--comment=$TOKEN:1" short.sh
COMPLETED=$(tr -d '\n' < "$OUT/sbatch_parsable.txt"); COMPLETED=${COMPLETED%%;*}
OOM=$(sbatch --parsable -p devel -t 1 --mem=100M --array=0-3 -J oom_cap "--comment=$TOKEN:2" oom.sh)
TIMEOUT=$(sbatch --parsable -p devel -t 1 --mem=50M -J timeout_cap "--comment=$TOKEN:3" sleep.sh)
PEND=$(sbatch --parsable -p devel -t 1 --mem=50M --array=1-5%2 --hold -J pend_cap "--comment=$TOKEN:4" short.sh)
PEND2=$(sbatch --parsable -p devel -t 1 --mem=50M --array=0,3-7 --hold -J pend2_cap short.sh)
{
  echo
  echo "Jobs:"
  echo "- $COMPLETED: \`sbatch --parsable -p devel -t 1 --mem=50M -J completed_cap --comment=$TOKEN:1 short.sh\`"
  echo "- $OOM: \`sbatch --parsable -p devel -t 1 --mem=100M --array=0-3 -J oom_cap --comment=$TOKEN:2 oom.sh\` (task 1 touches 300 MB: OOM; task 2 exits 3; tasks 0 and 3 COMPLETED)"
  echo "- $TIMEOUT: \`sbatch --parsable -p devel -t 1 --mem=50M -J timeout_cap --comment=$TOKEN:3 sleep.sh\` (TIMEOUT)"
  echo "- $PEND: \`sbatch --parsable -p devel -t 1 --mem=50M --array=1-5%2 --hold -J pend_cap --comment=$TOKEN:4 short.sh\` (held: stays PENDING)"
  echo "- $PEND2: \`sbatch --parsable -p devel -t 1 --mem=50M --array=0,3-7 --hold -J pend2_cap short.sh\` (held)"
} > "$OUT/.jobs.md"

sleep 3
rec sacct_pending_array "held arrays $PEND (--array=1-5%2 --hold) and $PEND2 (--array=0,3-7 --hold), still PENDING" \
  "${SACCT[@]}" "--jobs=$PEND,$PEND2"
rec squeue_tokens "as SlurmClient.find_tokens calls squeue; jobs $COMPLETED..$PEND2 submitted a few seconds before (timeout job running)" \
  squeue --noheader --user="$(id -u)" '--format=%F|%k' --states=all

# wait for everything but the held arrays to finish (the TIMEOUT job takes 1-2 minutes)
for ((i = 0; i < 300; i++)); do
  left=$(sacct -X -n -P -o State "--jobs=$COMPLETED,$OOM,$TIMEOUT" | grep -cE 'PENDING|RUNNING|COMPLETING|CONFIGURING|REQUEUE' || true)
  [ "$left" = 0 ] && break
  sleep 2
done
sleep 5   # let slurmdbd receive the last step records
rec sacct_completed "job $COMPLETED: -p devel -t 1 --mem=50M short.sh (echo ok)" "${SACCT[@]}" "--jobs=$COMPLETED"
rec sacct_oom_array "array $OOM: --mem=100M --array=0-3 oom.sh; task 1 OOM, task 2 exit 3, tasks 0 and 3 COMPLETED" \
  "${SACCT[@]}" "--jobs=$OOM"
rec sacct_timeout "job $TIMEOUT: -p devel -t 1 --mem=50M sleep.sh (sleep 200)" "${SACCT[@]}" "--jobs=$TIMEOUT"
rec sacct_tokens "as SlurmClient.find_tokens calls sacct (comments via AccountingStoreFlags=job_comment)" \
  sacct --noheader --parsable2 --allocations --format=JobID,Comment "--starttime=$START" --user="$(id -u)"
# the job logs (default --output, in the working directory): what slurmstepd writes into them
rec job_log_oom "log of the OOM task ${OOM}_1: the shell's Killed line and Slurm's oom_kill line" cat "slurm-${OOM}_1.out"
rec job_log_timeout "log of the TIMEOUT job $TIMEOUT: Slurm's time-limit line" cat "slurm-$TIMEOUT.out"
rec scontrol_config "scontrol show config of the live cluster" scontrol show config
rec scontrol_partition "live cluster" scontrol --all --oneliner show partition
rec scontrol_node "live cluster" scontrol --all --oneliner show node
scancel "$PEND" "$PEND2"
{
  echo "# Recordings: $VERSION"
  echo
  echo "Made $(date -u +%Y-%m-%dT%H:%M:%SZ), as root, by \`tests/unit/data/record.sh $REL OUTDIR $W\` run inside"
  echo "the cluster's environment (24.11/26.05: through \`docker-cluster/chroot.sh run REL --\`; 22.05: on the host)."
  echo "Every sacct/squeue call ran with \`SLURM_TIME_FORMAT=standard SLURM_BITSTR_LEN=0\` in the environment,"
  echo "as \`slurm_escalate.slurm.client.query_env()\` sets. Each \`NAME.txt\` is the stdout of the command in"
  echo "\`NAME.cmd\` (same convention as tests/unit/data). Job scripts, in the working directory \`$W\`:"
  echo
  for s in short.sh sleep.sh oom.sh; do echo "\`$s\`:"; echo '```bash'; cat "$s"; echo '```'; done
  cat "$OUT/.jobs.md"
  echo
  echo "| file | command — what |"
  echo "|---|---|"
  cat "$ROWS"
} > "$MD"
rm -f "$OUT/.jobs.md" "$ROWS"
echo "recorded $VERSION into $OUT: jobs $COMPLETED $OOM $TIMEOUT $PEND $PEND2"
