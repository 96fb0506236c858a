scontrol --all --oneliner show partition
# live cluster from docker-cluster/slurm.conf.template (devel/day/week, day is the default)
