sacct --noheader --parsable2 --duplicates --format=JobID,JobIDRaw,State,ExitCode,MaxRSS,Elapsed,Timelimit,Start,End,NodeList,Partition,ReqMem,JobName --jobs=59
# job 59 again, with --duplicates: every run
# slurm-wlm 24.11.5
