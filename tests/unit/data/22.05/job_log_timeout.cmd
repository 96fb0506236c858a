cat slurm-220.out
# log of the TIMEOUT job 220: Slurm's time-limit line
# slurm-wlm 22.05.8
