sacct --noheader --parsable2 --format=JobID,JobIDRaw,State,ExitCode,MaxRSS,Elapsed,Timelimit,Start,End,NodeList,Partition,ReqMem,JobName --jobs=9
# array 9: --mem=100M --array=0-3 oom.sh; task 1 OOM, task 2 exit 3, tasks 0 and 3 COMPLETED
# slurm-wlm 26.05.5
