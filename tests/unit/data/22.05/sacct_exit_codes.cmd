sacct --noheader --parsable2 --format=JobID,JobIDRaw,State,ExitCode,MaxRSS,Elapsed,Timelimit,Start,End,NodeList,Partition,ReqMem,JobName --jobs=24668,24669,24670
# jobs 24668,24669,24670: exit 137, exit 9, kill -9 $$
# slurm-wlm 22.05.8
