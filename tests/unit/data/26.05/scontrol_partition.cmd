scontrol --all --oneliner show partition
# live cluster
# slurm-wlm 26.05.5
