scontrol --all --oneliner show node
# live cluster
# slurm-wlm 26.05.5
