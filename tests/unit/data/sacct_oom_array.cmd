sacct --noheader --parsable2 --format=JobID,JobIDRaw,State,ExitCode,MaxRSS,Elapsed,Timelimit,Start,End,NodeList,Partition,ReqMem,JobName --jobs=7
# jobs: sbatch -p devel -t 1 --mem=100M --array=0-3 -J oom_cap oom.sh
# oom.sh: task 1 runs python3 allocating and touching 300MB (cgroup OOM kill), task 2 exits 3, tasks 0 and 3 echo ok
