sacct --noheader --parsable2 --format=JobID,JobIDRaw,State,ExitCode,MaxRSS,Elapsed,Timelimit,Start,End,NodeList,Partition,ReqMem,JobName --jobs=24671
# job 24671, requeued once while running by scontrol requeue, then COMPLETED: as the monitor asks
# slurm-wlm 22.05.8
