sacct --noheader --parsable2 --format=JobID,JobIDRaw,State,ExitCode,MaxRSS,Elapsed,Timelimit,Start,End,NodeList,Partition,ReqMem,JobName --jobs=56,57,58
# jobs 56,57,58: exit 137, exit 9, kill -9 $$
# slurm-wlm 24.11.5
