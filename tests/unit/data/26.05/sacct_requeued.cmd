sacct --noheader --parsable2 --format=JobID,JobIDRaw,State,ExitCode,MaxRSS,Elapsed,Timelimit,Start,End,NodeList,Partition,ReqMem,JobName --jobs=23
# job 23, requeued once while running by scontrol requeue, then COMPLETED: as the monitor asks
# slurm-wlm 26.05.5
