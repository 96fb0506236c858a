sacct --noheader --parsable2 --format=JobID,JobIDRaw,State,ExitCode,MaxRSS,Elapsed,Timelimit,Start,End,NodeList,Partition,ReqMem,JobName --jobs=8,9
# same jobs as sacct_pending_array, after `scancel 8_3` and `scancel 9` while both were still held.
# Note: 8_3, cancelled while pending inside the array record, gets NO row of its own: it just
# disappears from the 8_[...] record. 9 cancelled while pending keeps its bracket row, now CANCELLED.
