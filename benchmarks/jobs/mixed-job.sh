#!/bin/bash
#SBATCH --ntasks=1
#
# Benchmark job for scenario b (mixed array), with benchmarks/jobs/mixed-ladder.yaml
# (level 0: 300M / 1 min, level 1: 330M / 2 min, level 2: 800M / 3 min).
# What array index i does, by i % 5 (needs are real: the cgroup limit decides):
#   0  quick         10 s of work, a few MB
#   1  OOM-once      needs 315 MB for 20 s of work: OUT_OF_MEMORY at 300M, fits 330M
#   2  OOM-twice     needs 600 MB for 40 s of work: OUT_OF_MEMORY at 300M and 330M, fits 800M
#   3  TIMEOUT-once  100 s of work: TIMEOUT at 1 min (Slurm kills 0-35 s late), fits 2 min
#   4  code error    exits 3 after 3 s: FAILED, never retried
#
# Memory grows 100 MB/s, and 5 MB/s in the last 40 MB below the job's own limit
# (SLURM_MEM_PER_NODE). This cluster samples MaxRSS every 2 s; the slow approach
# keeps the last sample before an OOM kill within ~10 MB of the limit, as a finer
# sampling rate would, so `escalation: skip` sees a realistic MaxRSS.
#
#   mixed-job.sh [SCALE]   SCALE multiplies the work seconds (default 1)

set -u

idx=${SLURM_ARRAY_TASK_ID:-0}
scale=${1:-1}
echo "=== $(date '+%F %T') task ${idx} job ${SLURM_JOB_ID:-none} level ${SLURM_ESCALATE_LEVEL:-none}" \
     "attempt ${SLURM_ESCALATE_ATTEMPT:-1} partition ${SLURM_JOB_PARTITION:-none}" \
     "mem ${SLURM_MEM_PER_NODE:-?}M"

need_memory() {  # need_memory MB SECONDS: hold MB (whole process) while working SECONDS
    /usr/bin/python3 - "$1" "$2" "${SLURM_MEM_PER_NODE:-0}" <<'PY'
import sys
import time

need_mb, work_s, limit_mb = int(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3])
MB = 1 << 20
base_mb = 12  # the interpreter and the shell
target = max(0, need_mb - base_mb)
slow_from = target if limit_mb <= 0 else min(target, max(0, limit_mb - base_mb - 40))
held, blocks = 0, []
while held < target:
    step = 20 if held + 20 <= slow_from else 1
    block = bytearray(step * MB)
    for i in range(0, len(block), 4096):  # touch every page: untouched pages cost nothing
        block[i] = 1
    blocks.append(block)
    held += step
    time.sleep(0.2)
print(f"holding {held + base_mb} MB for {work_s:g} s", flush=True)
time.sleep(work_s)
PY
}

work() { sleep "$(awk -v s="$1" -v k="$scale" 'BEGIN { print s * k }')"; }

case $((idx % 5)) in
    0) work 10 ;;
    1) need_memory 315 "$(awk -v k="$scale" 'BEGIN { print 20 * k }')" || exit $? ;;
    2) need_memory 600 "$(awk -v k="$scale" 'BEGIN { print 40 * k }')" || exit $? ;;
    3) sleep 100 ;;  # never scaled: it must outlast level 0's minute plus Slurm's lag
    4) work 3; echo "task ${idx}: a bug, exit 3" >&2; exit 3 ;;
esac
echo "=== $(date '+%F %T') task ${idx}: done"
