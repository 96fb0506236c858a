squeue --noheader --user=0 --format=%F|%k --states=all
# as SlurmClient.find_tokens calls squeue; jobs 1..5 submitted a few seconds before (timeout job running)
# slurm-wlm 24.11.5
