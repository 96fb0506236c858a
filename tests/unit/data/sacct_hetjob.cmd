sacct --noheader --parsable2 --format=JobID,JobIDRaw,State,ExitCode,MaxRSS,Elapsed,Timelimit,Start,End,NodeList,Partition,ReqMem,JobName --jobs=20
# jobs: sbatch -J het_cap -p devel -t 1 --mem=50M : -p devel -t 1 --mem=50M --wrap "exit 0"  (heterogeneous job)
