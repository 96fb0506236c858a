scontrol --all --oneliner show partition
# live cluster
# slurm-wlm 22.05.8
