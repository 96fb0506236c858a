scontrol --all --oneliner show partition
# live cluster
# slurm-wlm 24.11.5
