"""--version and shell completion, through the real entry points (and, for bash, a real bash).

Completion is click's: ``_SBATCH_ESCALATE_COMPLETE=bash_source sbatch_escalate`` prints the
script a shell sources; on TAB the script runs the command again with COMP_WORDS/COMP_CWORD
and ``..._COMPLETE=bash_complete`` and offers what it prints. sbatch_escalate reads like
sbatch, so its completion follows ``own_options_first``: this tool's options only in the
leading run, sbatch's long options after, nothing inside a script's arguments.
"""

from __future__ import annotations

import importlib.metadata
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from slurm_escalate.cli import main as cli
from slurm_escalate.state.journal import SPEC_FILE

ENTRIES = {"sbatch_escalate": "sbatch_escalate_main", "slurm-escalate": "main"}
COMPLETE_VAR = {
    "sbatch_escalate": "_SBATCH_ESCALATE_COMPLETE",
    "slurm-escalate": "_SLURM_ESCALATE_COMPLETE",
}
BIN = Path(sys.executable).parent  # the venv's console scripts


def run_entry(
    prog: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *argv: str
) -> tuple[int, str, str]:
    """The console script ``prog`` in this process: its exit status, stdout, stderr."""
    monkeypatch.setattr(sys, "argv", [prog, *argv])
    with pytest.raises(SystemExit) as e:
        getattr(cli, ENTRIES[prog])()
    out, err = capsys.readouterr()
    code = e.value.code
    return (code if isinstance(code, int) else 1), out, err


def complete(
    prog: str, line: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> list[str]:
    """What one TAB at the end of ``line`` offers in bash: ``type,value`` per item, as
    bash's script reads them. A trailing space means a new, empty word."""
    words = [prog, *line.split()]
    cword = len(words) if line.endswith(" ") or not line else len(words) - 1
    monkeypatch.setenv(COMPLETE_VAR[prog], "bash_complete")
    monkeypatch.setenv("COMP_WORDS", " ".join(words))
    monkeypatch.setenv("COMP_CWORD", str(cword))
    code, out, err = run_entry(prog, monkeypatch, capsys)
    assert (code, err) == (0, "")
    return [item for item in out.split("\n") if item]


def values(items: list[str]) -> list[str]:
    return [item.split(",", 1)[1] for item in items if item.startswith("plain,")]


# ------------------------------------------------------------------ --version


@pytest.mark.parametrize("prog", ["sbatch_escalate", "slurm-escalate"])
def test_version_comes_from_the_installed_package_metadata(prog, monkeypatch, capsys):
    """Not a string in the code: the metadata's version, whatever it says."""
    asked: list[str] = []

    def fake_version(name: str) -> str:
        asked.append(name)
        return "9.8.7.dev3"

    monkeypatch.setattr(importlib.metadata, "version", fake_version)
    assert run_entry(prog, monkeypatch, capsys, "--version") == (0, f"{prog} 9.8.7.dev3\n", "")
    assert asked == ["slurm-escalate"]  # the distribution's name in pyproject.toml


def test_submit_subcommand_has_version_too(monkeypatch, capsys):
    code, out, _ = run_entry("slurm-escalate", monkeypatch, capsys, "submit", "--version")
    assert (code, out) == (0, f"slurm-escalate {importlib.metadata.version('slurm-escalate')}\n")


# ----------------------------------------------------------- the shell scripts


@pytest.mark.parametrize(
    ("shell", "registers"),
    [
        ("bash", "complete -o nosort -F _{func}_completion {prog}"),
        ("zsh", "compdef _{func}_completion {prog}"),
        ("fish", "complete --no-files --command {prog} "),
    ],
)
@pytest.mark.parametrize("prog", ["sbatch_escalate", "slurm-escalate"])
def test_source_script_for_each_shell_registers_the_command(
    prog, shell, registers, monkeypatch, capsys
):
    monkeypatch.setenv(COMPLETE_VAR[prog], f"{shell}_source")
    code, out, err = run_entry(prog, monkeypatch, capsys)
    assert code == 0, err
    func = prog.replace("-", "_")
    assert registers.format(func=func, prog=prog) in out
    # on TAB the script calls the command back with the completion variable set
    assert f"{COMPLETE_VAR[prog]}={shell}_complete" in out
    if shell == "zsh":
        assert out.startswith(f"#compdef {prog}\n")


def test_unknown_shell_prints_nothing_and_fails(monkeypatch, capsys):
    monkeypatch.setenv("_SLURM_ESCALATE_COMPLETE", "tcsh_source")
    assert run_entry("slurm-escalate", monkeypatch, capsys) == (1, "", "")


def _bash(script: str, tmp_path: Path) -> str:
    for prog in ENTRIES:
        assert (BIN / prog).is_file(), f"{BIN / prog} missing: install the package (pip -e .)"
    env = {
        **os.environ,
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "SLURM_ESCALATE_HOME": str(tmp_path / "state"),
    }
    for var in COMPLETE_VAR.values():
        env.pop(var, None)
    bash = shutil.which("bash")
    assert bash is not None
    done = subprocess.run(
        [bash, "--norc", "--noprofile", "-c", script],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_bash_sources_both_scripts_and_completes_through_comp_words(tmp_path):
    """A real bash: sourcing registers both commands; the registered function, driven by
    COMP_WORDS and COMP_CWORD as bash's readline drives it, fills COMPREPLY."""
    script = r"""
    set -e
    eval "$(_SBATCH_ESCALATE_COMPLETE=bash_source sbatch_escalate)"
    eval "$(_SLURM_ESCALATE_COMPLETE=bash_source slurm-escalate)"
    complete -p sbatch_escalate
    complete -p slurm-escalate
    tab() {  # tab FUNCTION WORD...: COMPREPLY for a TAB after the last word
        local func=$1; shift
        COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); COMPREPLY=()
        "$func" "$1"
        echo "$*:" "${COMPREPLY[@]}"
    }
    tab _slurm_escalate_completion slurm-escalate st
    tab _sbatch_escalate_completion sbatch_escalate --detached --ar
    tab _sbatch_escalate_completion sbatch_escalate --mem = 2G --ti
    tab _sbatch_escalate_completion sbatch_escalate --mem 2G --de
    """
    out = _bash(script, tmp_path).splitlines()
    assert out == [
        "complete -o nosort -F _sbatch_escalate_completion sbatch_escalate",
        "complete -o nosort -F _slurm_escalate_completion slurm-escalate",
        "slurm-escalate st: status",
        "sbatch_escalate --detached --ar: --array",
        # bash splits --mem=2G at "=" (COMP_WORDBREAKS); still sbatch's options follow
        "sbatch_escalate --mem = 2G --ti: --time --time-min",
        # after an sbatch option, --detached would be sbatch's: not offered
        "sbatch_escalate --mem 2G --de: --deadline --delay-boot --dependency",
    ]


# ---------------------------------------------------- what a TAB offers, in-process


def test_slurm_escalate_offers_its_subcommands(monkeypatch, capsys):
    assert values(complete("slurm-escalate", "st", monkeypatch, capsys)) == ["status"]
    assert set(values(complete("slurm-escalate", "", monkeypatch, capsys))) == {
        "submit", "list", "status", "resume", "watch", "log", "cancel", "adopt", "report",
        "suggest",
    }  # fmt: skip


@pytest.mark.parametrize("prog", ["sbatch_escalate", "slurm-escalate submit"])
def test_leading_options_are_ours_and_sbatchs(prog, monkeypatch, capsys):
    cmd, _, sub = prog.partition(" ")
    offered = values(complete(cmd, f"{sub} --".strip(), monkeypatch, capsys))
    assert offered[:3] == ["--version", "--config", "--detached"]  # ours first
    assert {"--array", "--mem", "--time", "--partition", "--dependency"} <= set(offered)
    # sbatch's own --parsable/--verbose/--quiet are ours in this position: listed once
    assert offered.count("--parsable") == offered.count("--verbose") == 1
    # what sbatch_escalate refuses is not offered
    assert not {"--wait", "--test-only", "--usage"} & set(offered)
    assert len(offered) == len(set(offered))


DE = ["plain,--deadline", "plain,--delay-boot", "plain,--dependency"]  # sbatch's --de...


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("--ar", ["plain,--array"]),
        ("--detached --de", DE),
        ("--config=x.yaml --de", ["plain,--detached", *DE]),
        # after the first sbatch word, our options would be sbatch's: only sbatch's
        ("--mem 2G --de", DE),
        ("-p day --det", []),
        # after the script, every word is the script's: nothing to guess
        ("job.sh --de", []),
        ("--mem 2G job.sh --ti", []),
        # words that are not options: the script and its arguments are files
        ("", ["file,"]),
        ("jo", ["file,jo"]),
        ("--mem 2G ", ["file,"]),
        ("--mem 2G job.sh in", ["file,in"]),
        ("--config ", ["file,"]),
        # the value of an sbatch option: nothing, but a path for the few that take one
        ("--mem ", []),
        ("-t ", []),
        ("-o ", ["file,"]),
        ("--chdir ", ["dir,"]),
        # a "--" the user typed: sbatch's options still follow
        ("-- --de", DE),
    ],
)
def test_sbatch_escalate_completes_like_sbatch(line, expected, monkeypatch, capsys):
    assert complete("sbatch_escalate", line, monkeypatch, capsys) == expected


def test_submit_subcommand_completes_as_sbatch_escalate(monkeypatch, capsys):
    line = "--mem 2G --de"
    assert complete("slurm-escalate", f"submit {line}", monkeypatch, capsys) == complete(
        "sbatch_escalate", line, monkeypatch, capsys
    )


def test_completion_submits_nothing_and_writes_no_state(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SLURM_ESCALATE_HOME", str(tmp_path / "state"))
    monkeypatch.setenv("PATH", str(tmp_path))  # no sbatch: a submission would fail loudly
    complete("sbatch_escalate", "--array 0-3 job.sh ", monkeypatch, capsys)
    assert not (tmp_path / "state").exists()


def _chains(home: Path, *ids: str) -> None:
    for chain_id in ids:
        (home / "chains" / chain_id).mkdir(parents=True)
        (home / "chains" / chain_id / SPEC_FILE).write_text("{}")


@pytest.mark.parametrize("sub", ["status", "resume", "watch", "log", "cancel", "report"])
def test_chain_arguments_offer_the_chain_ids_newest_first(sub, tmp_path, monkeypatch, capsys):
    _chains(tmp_path, "20260101-090000-aaaa", "20260102-090000-bbbb", "20251231-090000-cccc")
    (tmp_path / "chains" / "not-a-chain").mkdir()
    monkeypatch.setenv("SLURM_ESCALATE_HOME", str(tmp_path))
    assert values(complete("slurm-escalate", f"{sub} ", monkeypatch, capsys)) == [
        "20260102-090000-bbbb",
        "20260101-090000-aaaa",
        "20251231-090000-cccc",
    ]
    assert values(complete("slurm-escalate", f"{sub} 2026", monkeypatch, capsys)) == [
        "20260102-090000-bbbb",
        "20260101-090000-aaaa",
    ]


def test_chain_ids_without_a_state_directory_offer_nothing(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SLURM_ESCALATE_HOME", str(tmp_path / "none"))
    assert complete("slurm-escalate", "status ", monkeypatch, capsys) == []
    monkeypatch.delenv("SLURM_ESCALATE_HOME")
    monkeypatch.delenv("XDG_STATE_HOME", raising=False)
    monkeypatch.delenv("HOME", raising=False)  # no state directory can be named at all
    monkeypatch.setattr(os.path, "expanduser", lambda p: p)
    assert complete("slurm-escalate", "status ", monkeypatch, capsys) == []


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("report -o ", ["file,"]),
        ("report --db ", ["file,"]),
        ("adopt 123 --config ", ["file,"]),
        ("adopt 123 --script ", ["file,"]),
        ("adopt 123 --workdir ", ["dir,"]),
        ("report --format ", ["plain,md", "plain,json", "plain,html"]),
    ],
)
def test_option_values_complete_paths_and_choices(line, expected, monkeypatch, capsys):
    assert complete("slurm-escalate", line, monkeypatch, capsys) == expected
