scontrol show config
# live cluster (Slurm 22.05.8, MaxArraySize=2001)
