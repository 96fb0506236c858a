sacct --noheader --parsable2 --format=JobID,JobIDRaw,State,ExitCode,MaxRSS,Elapsed,Timelimit,Start,End,NodeList,Partition,ReqMem,JobName --jobs=59
# job 59, requeued once while running by scontrol requeue, then COMPLETED: as the monitor asks
# slurm-wlm 24.11.5
