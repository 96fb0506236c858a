scontrol show config
# scontrol show config of the live cluster
# slurm-wlm 24.11.5
