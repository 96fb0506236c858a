cat slurm-9_1.out
# log of the OOM task 9_1: the shell's Killed line and Slurm's oom_kill line
# slurm-wlm 26.05.5
