scontrol show config
# scontrol show config of the live cluster
# slurm-wlm 22.05.8
