sacct --noheader --parsable2 --allocations --format=JobID,Comment --starttime=2026-12-02T16:07:33 --user=0
# as SlurmClient.find_tokens calls sacct (comments via AccountingStoreFlags=job_comment)
# slurm-wlm 24.11.5
