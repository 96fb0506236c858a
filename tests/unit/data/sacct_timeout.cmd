sacct --noheader --parsable2 --format=JobID,JobIDRaw,State,ExitCode,MaxRSS,Elapsed,Timelimit,Start,End,NodeList,Partition,ReqMem,JobName --jobs=6
# jobs: sbatch -p devel -t 1 --mem=50M -J timeout_cap sleep.sh   (sleep.sh: sleep 200)
