scontrol --all --oneliner show node
# live cluster
# slurm-wlm 22.05.8
