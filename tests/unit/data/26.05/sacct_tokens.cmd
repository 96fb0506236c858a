sacct --noheader --parsable2 --allocations --format=JobID,Comment --starttime=2026-12-02T18:39:27 --user=0
# as SlurmClient.find_tokens calls sacct (comments via AccountingStoreFlags=job_comment)
# slurm-wlm 26.05.5
