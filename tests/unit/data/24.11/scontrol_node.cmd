scontrol --all --oneliner show node
# live cluster
# slurm-wlm 24.11.5
