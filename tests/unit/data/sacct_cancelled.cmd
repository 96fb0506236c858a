sacct --noheader --parsable2 --format=JobID,JobIDRaw,State,ExitCode,MaxRSS,Elapsed,Timelimit,Start,End,NodeList,Partition,ReqMem,JobName --jobs=10,11
# jobs: sbatch -p devel -t 2 --mem=50M -J cancel_cap short.sh (sleep 100); then scancel 10 while running
#       sbatch -p devel -t 2 --mem=50M --array=0-2 -J cancelarr_cap short.sh; then scancel 11 while running
