sacct --noheader --parsable2 --format=JobID,JobIDRaw,State,ExitCode,MaxRSS,Elapsed,Timelimit,Start,End,NodeList,Partition,ReqMem,JobName --jobs=11,12
# held arrays 11 (--array=1-5%2 --hold) and 12 (--array=0,3-7 --hold), still PENDING
# slurm-wlm 26.05.5
