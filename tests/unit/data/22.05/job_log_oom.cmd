cat slurm-219_1.out
# log of the OOM task 219_1: the shell's Killed line and Slurm's oom_kill line
# slurm-wlm 22.05.8
