sacct --noheader --parsable2 --format=JobID,JobIDRaw,State,ExitCode,MaxRSS,Elapsed,Timelimit,Start,End,NodeList,Partition,ReqMem,JobName --jobs=1
# job 1: -p devel -t 1 --mem=50M short.sh (echo ok)
# slurm-wlm 24.11.5
