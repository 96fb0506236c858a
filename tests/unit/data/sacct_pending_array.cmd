sacct --noheader --parsable2 --format=JobID,JobIDRaw,State,ExitCode,MaxRSS,Elapsed,Timelimit,Start,End,NodeList,Partition,ReqMem,JobName --jobs=8,9
# jobs: sbatch -p devel -t 1 --mem=50M --array=1-5%2 --hold -J pend_cap short.sh
#       sbatch -p devel -t 1 --mem=50M --array=0,3-7 --hold -J pend2_cap short.sh   (both held, so still PENDING)
