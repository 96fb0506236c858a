cat slurm-10.out
# log of the TIMEOUT job 10: Slurm's time-limit line
# slurm-wlm 26.05.5
