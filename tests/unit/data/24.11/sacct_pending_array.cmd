sacct --noheader --parsable2 --format=JobID,JobIDRaw,State,ExitCode,MaxRSS,Elapsed,Timelimit,Start,End,NodeList,Partition,ReqMem,JobName --jobs=4,5
# held arrays 4 (--array=1-5%2 --hold) and 5 (--array=0,3-7 --hold), still PENDING
# slurm-wlm 24.11.5
