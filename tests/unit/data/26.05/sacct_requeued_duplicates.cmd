sacct --noheader --parsable2 --duplicates --format=JobID,JobIDRaw,State,ExitCode,MaxRSS,Elapsed,Timelimit,Start,End,NodeList,Partition,ReqMem,JobName --jobs=23
# job 23 again, with --duplicates: every run
# slurm-wlm 26.05.5
