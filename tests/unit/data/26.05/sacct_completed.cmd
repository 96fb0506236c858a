sacct --noheader --parsable2 --format=JobID,JobIDRaw,State,ExitCode,MaxRSS,Elapsed,Timelimit,Start,End,NodeList,Partition,ReqMem,JobName --jobs=8
# job 8: -p devel -t 1 --mem=50M short.sh (echo ok)
# slurm-wlm 26.05.5
