sacct --noheader --parsable2 --format=JobID,JobIDRaw,State,ExitCode,MaxRSS,Elapsed,Timelimit,Start,End,NodeList,Partition,ReqMem,JobName --jobs=20,21,22
# jobs 20,21,22: exit 137, exit 9, kill -9 $$
# slurm-wlm 26.05.5
