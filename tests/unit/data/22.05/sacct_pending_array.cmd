sacct --noheader --parsable2 --format=JobID,JobIDRaw,State,ExitCode,MaxRSS,Elapsed,Timelimit,Start,End,NodeList,Partition,ReqMem,JobName --jobs=221,222
# held arrays 221 (--array=1-5%2 --hold) and 222 (--array=0,3-7 --hold), still PENDING
# slurm-wlm 22.05.8
