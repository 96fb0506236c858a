sacct --noheader --parsable2 --format=JobID,JobIDRaw,State,ExitCode,MaxRSS,Elapsed,Timelimit,Start,End,NodeList,Partition,ReqMem,JobName --jobs=218
# job 218: -p devel -t 1 --mem=50M short.sh (echo ok)
# slurm-wlm 22.05.8
