sacct --noheader --parsable2 --duplicates --format=JobID,JobIDRaw,State,ExitCode,MaxRSS,Elapsed,Timelimit,Start,End,NodeList,Partition,ReqMem,JobName --jobs=24671
# job 24671 again, with --duplicates: every run
# slurm-wlm 22.05.8
