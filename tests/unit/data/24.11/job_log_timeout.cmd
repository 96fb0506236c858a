cat slurm-3.out
# log of the TIMEOUT job 3: Slurm's time-limit line
# slurm-wlm 24.11.5
