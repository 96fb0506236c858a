cat slurm-2_1.out
# log of the OOM task 2_1: the shell's Killed line and Slurm's oom_kill line
# slurm-wlm 24.11.5
