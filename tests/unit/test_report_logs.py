"""Where a task's log is: sbatch's filename patterns, expanded like slurmd does."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_report import mixed_chain

from slurm_escalate.core.chain import Attempt
from slurm_escalate.reporting.logs import (
    expand_pattern,
    log_path,
    request_of,
    tail,
    task_logs,
)


@pytest.mark.parametrize(
    ("pattern", "index", "expected"),
    [
        ("slurm-%A_%a.out", 7, "slurm-1974_7.out"),
        ("%x-%a.out", 7, "job-7.out"),
        ("logs/%x/%4a.log", 7, "logs/job/0007.log"),
        ("100%%-%a", 3, "100%-3"),
        ("%u-%a", 1, "me-1"),
        ("%N-%a", 2, "d1-2"),
        ("%n-%t-%a", 2, "0-0-2"),
        ("slurm-%j.out", None, "slurm-1974.out"),  # a non-array job: %j is its job id
        ("%x-%a.out", None, "job-4294967294.out"),  # %a outside an array: NO_VAL
        ("slurm-%j.out", 7, None),  # an array task's own job id is not recorded
        ("%J.out", 7, None),
        ("%s.out", 7, None),
        ("plain\\%a.out", 7, "plain%a.out"),  # a backslash turns replacement off
    ],
)
def test_expand_pattern(pattern: str, index: int | None, expected: str | None) -> None:
    got = expand_pattern(
        pattern, job_name="job", array_job_id="1974", index=index, node="d1,d2", user="me"
    )
    assert got == expected


def test_log_path_from_the_command_line_and_default(tmp_path: Path) -> None:
    chain, _ = mixed_chain(tmp_path)
    request = request_of(chain)
    attempt = Attempt(job_id="103", level=2, submission=4)
    assert log_path(chain, request, 6, attempt) == str(tmp_path / "t-6.log")
    chain.sbatch_args = ["--array=0-6", "--chdir=sub"]
    assert log_path(chain, request_of(chain), 6, attempt) == str(
        tmp_path / "sub" / "slurm-103_6.out"
    )


def test_log_name_from_the_saved_scripts_directives(tmp_path: Path) -> None:
    chain, _ = mixed_chain(tmp_path)
    assert chain.script_copy is not None
    Path(chain.script_copy).write_text(
        "#!/bin/bash\n#SBATCH --job-name=saved\n#SBATCH -o out/%x.%a.txt\necho hi\n"
    )
    chain.sbatch_args = ["--array=0-6"]
    attempt = Attempt(job_id="100", level=0, submission=1)
    assert log_path(chain, request_of(chain), 4, attempt) == str(tmp_path / "out/saved.4.txt")


def test_tail_of_logs(tmp_path: Path) -> None:
    chain, _ = mixed_chain(tmp_path)
    (tmp_path / "t-4.log").write_text("a\nb\n")
    logs = task_logs(chain, [4, 6])
    assert logs[4].lines == ("a", "b")
    assert logs[6].lines is None and "log not readable" in logs[6].note
    assert tail(None).note.startswith("log name unknown")
    (tmp_path / "bin.log").write_bytes(b"ok\n\xff\xfe\n")
    assert tail(str(tmp_path / "bin.log")).lines == ("ok", "\ufffd\ufffd")
