sacct --noheader --parsable2 --format=JobID,JobIDRaw,State,ExitCode,MaxRSS,Elapsed,Timelimit,Start,End,NodeList,Partition,ReqMem,JobName --jobs=60
# jobs: sbatch -p devel -t 1 --mem=100M -J "pipe|name with space" step.sh
# step.sh: srun --mem=100M true; srun --mem=100M python3 (allocates 300MB -> step 60.1 OOM); echo after
# The job row says COMPLETED while step .1 is OUT_OF_MEMORY; the job name contains a "|".
