sbatch --parsable -p devel -t 1 --mem=50M -J completed_cap --comment=slurm-escalate:rec1796227825:1 short.sh
# submits the COMPLETED job (its output is the job id)
# slurm-wlm 22.05.8
