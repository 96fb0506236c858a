"""Faults in Slurm's commands, injected with a wrapper on PATH, on the real cluster."""

from __future__ import annotations

import shutil
import time

import pytest

OOM_LADDER = [
    {"partition": "week", "mem": "200M", "time": "00:02:00"},
    {"partition": "week", "mem": "600M", "time": "00:02:00"},
]
REAL_SBATCH = shutil.which("sbatch") or "/usr/bin/sbatch"


def _hanging_sbatch(e2e, nth: int):
    """An sbatch that, on its nth call, really submits and then hangs for a minute."""
    bin_dir = e2e.dir / "bin"
    bin_dir.mkdir()
    wrapper = bin_dir / "sbatch"
    wrapper.write_text(f"""#!/bin/bash
count_file={e2e.dir}/sbatch-calls
n=$(( $(cat "$count_file" 2>/dev/null || echo 0) + 1 ))
echo $n > "$count_file"
if [ "$n" = {nth} ]; then
    {REAL_SBATCH} "$@" > {e2e.dir}/hidden-answer
    sleep 60
    exit 0
fi
exec {REAL_SBATCH} "$@"
""")
    wrapper.chmod(0o755)
    return {**e2e.env, "PATH": f"{bin_dir}:{e2e.env['PATH']}", "SLURM_ESCALATE_SBATCH_TIMEOUT": "5"}


@pytest.mark.timeout(400)
@pytest.mark.parametrize("nth", [1, 2], ids=["first-submission", "resubmission"])
def test_sbatch_that_submits_then_times_out_is_not_submitted_twice(e2e, nth):
    env = _hanging_sbatch(e2e, nth)
    script = e2e.job_script('case "$idx" in 1) use_memory 400 ;; *) sleep 1 ;; esac')
    argv = e2e.chain_argv(script, config=e2e.ladder(OOM_LADDER), sbatch=["--array=0-2"])
    r = e2e._run(argv, 300, env)
    assert r.returncode == 0, r.describe()
    hidden = (e2e.dir / "hidden-answer").read_text().strip().split(";")[0]
    status = e2e.status(r.chain_id)
    assert status["submissions"][nth - 1]["job_id"] == hidden, status["submissions"]
    assert f"but job {hidden} exists" in r.stderr, r.describe()
    for _ in range(30):
        rows = e2e.rows_per_index()
        if rows == {0: 1, 1: 2, 2: 1}:
            break
        time.sleep(2)
    assert rows == {0: 1, 1: 2, 2: 1}, (rows, status["submissions"])
    assert int((e2e.dir / "sbatch-calls").read_text()) == 2  # never retried
