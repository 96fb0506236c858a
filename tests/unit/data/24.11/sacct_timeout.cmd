sacct --noheader --parsable2 --format=JobID,JobIDRaw,State,ExitCode,MaxRSS,Elapsed,Timelimit,Start,End,NodeList,Partition,ReqMem,JobName --jobs=3
# job 3: -p devel -t 1 --mem=50M sleep.sh (sleep 200)
# slurm-wlm 24.11.5
