"""`slurm-escalate report` through the real entry point, on a chain run with the fake Slurm."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from test_report import mixed_chain

from slurm_escalate.cli import main as cli


@pytest.fixture
def chain_id(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    chain, _ = mixed_chain(tmp_path)
    monkeypatch.setenv("SLURM_ESCALATE_HOME", str(tmp_path / "state"))
    monkeypatch.chdir(tmp_path)
    return chain.chain_id


def report(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as e:
        cli._run(cli.cli, "slurm-escalate", ["report", *args])
    out, err = capsys.readouterr()
    return int(e.value.code or 0), out, err


def test_markdown_on_stdout_by_suffix_of_the_id(capsys, chain_id: str) -> None:
    code, out, err = report(capsys, chain_id[-4:])
    assert (code, err) == (0, "")
    assert out.startswith(f"# Chain {chain_id}\n")
    assert "5 of 7 tasks completed; 1 failed (not retried); 1 exhausted" in out


@pytest.mark.parametrize(
    ("args", "name", "start"),
    [
        (["-o", "r.html"], "r.html", "<!DOCTYPE html>"),
        (["-o", "r.json"], "r.json", "{"),
        (["-o", "r.txt", "--format", "html", "--detailed"], "r.txt", "<!DOCTYPE html>"),
        (["-o", "r.md"], "r.md", "# Chain"),
    ],
)
def test_output_file_format_follows_the_suffix(
    capsys, chain_id: str, tmp_path: Path, args: list[str], name: str, start: str
) -> None:
    code, out, err = report(capsys, chain_id, *args)
    assert (code, out, err) == (0, "", f"wrote {name}\n")
    assert (tmp_path / name).read_text().startswith(start)


def test_json_on_stdout(capsys, chain_id: str) -> None:
    code, out, _ = report(capsys, chain_id, "--format", "json")
    doc = json.loads(out)
    assert code == 0 and doc["schema"] == 1
    assert [c["chain_id"] for c in doc["chains"]] == [chain_id]


def test_db_alone_writes_only_the_database(capsys, chain_id: str, tmp_path: Path) -> None:
    code, out, err = report(capsys, "--all", "--db", "r.sqlite")
    assert (code, out, err) == (0, "", "wrote 1 chain(s) to r.sqlite\n")
    con = sqlite3.connect(tmp_path / "r.sqlite")
    assert con.execute("SELECT count(*) FROM attempts").fetchone() == (12,)
    code, out, _ = report(capsys, chain_id, "--db", "r.sqlite", "--format", "md")
    assert code == 0 and out.startswith("# Chain")


def test_all_skips_a_corrupt_chain_with_a_warning(capsys, chain_id: str, tmp_path: Path) -> None:
    bad = tmp_path / "state" / "chains" / "20200101-000000-dead"
    bad.mkdir()
    (bad / "state.json").write_text("{")
    code, out, err = report(capsys, "--all")
    assert code == 0 and out.count("# Chain ") == 1
    assert err.startswith("warning: ") and "corrupt chain state" in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "give a CHAIN or --all (not both)"),
        (["x", "--all"], "give a CHAIN or --all (not both)"),
        (["nope"], "no chain 'nope'"),
        (["--format", "pdf", "--all"], "Invalid value for '--format'"),
    ],
)
def test_usage_errors_exit_2(capsys, chain_id: str, args: list[str], message: str) -> None:
    code, out, err = report(capsys, *args)
    assert code == 2 and out == ""
    assert err.startswith("slurm-escalate: error: ") and message in err
    assert len(err.strip().splitlines()) == 1
