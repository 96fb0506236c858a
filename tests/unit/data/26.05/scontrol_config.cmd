scontrol show config
# scontrol show config of the live cluster
# slurm-wlm 26.05.5
