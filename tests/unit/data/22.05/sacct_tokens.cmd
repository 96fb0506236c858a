sacct --noheader --parsable2 --allocations --format=JobID,Comment --starttime=2026-12-02T16:10:25 --user=0
# as SlurmClient.find_tokens calls sacct (comments via AccountingStoreFlags=job_comment)
# slurm-wlm 22.05.8
