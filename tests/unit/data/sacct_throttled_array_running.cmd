sacct --noheader --parsable2 --format=JobID,JobIDRaw,State,ExitCode,MaxRSS,Elapsed,Timelimit,Start,End,NodeList,Partition,ReqMem,JobName --jobs=18
# jobs: sbatch -p devel -t 1 --mem=50M --array=0-4%1 -J throttle_cap --wrap "sleep 15"  (captured while 18_1 ran)
