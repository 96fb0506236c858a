"""Secrets in --export never reach the log."""

from __future__ import annotations

import pytest

from slurm_escalate.service.redact import mask_command_line, mask_export


@pytest.mark.parametrize(
    ("value", "masked"),
    [
        ("ALL", "ALL"),
        ("ALL,API_TOKEN=abc,N=1", "ALL,API_TOKEN=***,N=1"),
        ("NONE,db_password=hunter2", "NONE,db_password=***"),
        (
            "GH_SECRET=x,AWS_SECRET_ACCESS_KEY=y,PATH=/bin",
            "GH_SECRET=***,AWS_SECRET_ACCESS_KEY=***,PATH=/bin",
        ),
        ("MY_API_KEY=k,KEYBOARD=us", "MY_API_KEY=***,KEYBOARD=us"),
        ("ALL,TOKEN", "ALL,TOKEN"),  # exported by name only: there is no value to hide
    ],
)
def test_mask_export(value: str, masked: str) -> None:
    assert mask_export(value) == masked


def test_mask_command_line_both_spellings_and_nothing_else() -> None:
    tokens = ["--export=ALL,TOKEN=t", "--export", "PASSWORD=p", "job.sh", "TOKEN=keep-script-arg"]
    assert mask_command_line(tokens) == [
        "--export=ALL,TOKEN=***",
        "--export",
        "PASSWORD=***",
        "job.sh",
        "TOKEN=keep-script-arg",
    ]
