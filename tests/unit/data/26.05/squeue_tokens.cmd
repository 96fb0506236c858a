squeue --noheader --user=0 --format=%F|%k --states=all
# as SlurmClient.find_tokens calls squeue; jobs 8..12 submitted a few seconds before (timeout job running)
# slurm-wlm 26.05.5
