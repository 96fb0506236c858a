sacct --noheader --parsable2 --format=JobID,JobIDRaw,State,ExitCode,MaxRSS,Elapsed,Timelimit,Start,End,NodeList,Partition,ReqMem,JobName --jobs=18
# same job as sacct_throttled_array_running, later: note 18_3 is listed RUNNING *and* still inside
# the stale pending record 18_[3-4%1] (the real row must win over the placeholder)
