squeue --noheader --user=0 --format=%F|%k --states=all
# as SlurmClient.find_tokens calls squeue; jobs 218..222 submitted a few seconds before (timeout job running)
# slurm-wlm 22.05.8
