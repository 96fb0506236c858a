"""The catalogue of bad input: each case is one line naming the problem, exit 2,
no traceback, and nothing submitted (checked in sacct and squeue by job name).

Each case is (id, files to write, sbatch_escalate arguments, text the error must
contain). ``{name}`` in arguments is the test's unique job name; files are
written into the test's directory before the run.
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

JOB = "#!/bin/bash\necho hi\n"
OK_LADDER = 'levels:\n  - {partition: devel, mem: 200M, time: "00:01:00"}\n'


def ladder(text: str) -> dict[str, str]:
    return {"job.sh": JOB, "ladder.yaml": text}


def args(*extra: str) -> list[str]:
    return ["--config", "ladder.yaml", "--job-name={name}", *extra, "job.sh"]


CASES = [
    # ---- the YAML itself
    ("yaml-syntax", ladder("levels: [\n"), args(), "ladder.yaml: line"),
    ("yaml-top-list", ladder("- a\n"), args(), "top level must be a mapping"),
    ("yaml-empty", ladder(""), args(), "ladder.yaml: empty file"),
    ("yaml-unknown-top-key", ladder("levls: []\n"), args(), "unknown key 'levls'"),
    ("yaml-levels-not-list", ladder("levels: 5\n"), args(), "levels: expected a list"),
    (
        "yaml-unknown-level-key",
        ladder("levels:\n  - {mem: 1G, tme: 1}\n"),
        args(),
        "levels[0]: unknown key 'tme'",
    ),
    (
        "yaml-not-increasing",
        ladder("levels:\n  - {mem: 2G}\n  - {mem: 1G}\n"),
        args(),
        "levels[1]: does not increase",
    ),
    ("yaml-zero-mem", ladder("levels:\n  - {mem: 0}\n"), args(), "levels[0].mem: must be positive"),
    ("yaml-negative-mem", ladder("levels:\n  - {mem: -1G}\n"), args(), "levels[0].mem"),
    (
        "yaml-bad-mem",
        ladder("levels:\n  - {mem: lots}\n"),
        args(),
        "levels[0].mem: not a memory size",
    ),
    (
        "yaml-bad-time",
        ladder('levels:\n  - {time: "1:2:3:4"}\n'),
        args(),
        "levels[0].time: not a time",
    ),
    (
        "yaml-duplicate-level",
        ladder("levels:\n  - {mem: 1G}\n  - {mem: 1G}\n"),
        args(),
        "levels[1]: duplicate of levels[0]",
    ),
    (
        "yaml-unknown-state",
        ladder(OK_LADDER + "state_handling: {EXPLODED: escalate}\n"),
        args(),
        "state_handling.EXPLODED: unknown state",
    ),
    (
        "yaml-unknown-action",
        ladder(OK_LADDER + "state_handling: {TIMEOUT: panic}\n"),
        args(),
        "state_handling.TIMEOUT: unknown action 'panic'",
    ),
    (
        "yaml-exit-code-range",
        ladder(OK_LADDER + "state_handling: {exit_codes: {300: escalate}}\n"),
        args(),
        "exit code out of range 0-255",
    ),
    ("yaml-max-resubmits", ladder(OK_LADDER + "max_resubmits: -1\n"), args(), "max_resubmits"),
    (
        "yaml-escalation",
        ladder(OK_LADDER + "escalation: fast\n"),
        args(),
        "escalation: unknown value",
    ),
    (
        "yaml-hook-type",
        ladder(OK_LADDER + "on_complete: 5\n"),
        args(),
        "on_complete: expected a command",
    ),
    ("yaml-missing-file", {"job.sh": JOB}, args(), "ladder.yaml: no such file"),
    # ---- against the live cluster
    (
        "cluster-unknown-partition",
        ladder("levels:\n  - {partition: gpu}\n"),
        args(),
        "levels[0].partition: no partition 'gpu'",
    ),
    (
        "cluster-mem-too-big",
        ladder("levels:\n  - {partition: week, mem: 20G}\n"),
        args(),
        "levels[0].mem: 20G exceeds the largest node of partition 'week'",
    ),
    (
        "cluster-time-too-long",
        ladder('levels:\n  - {partition: devel, time: "00:10:00"}\n'),
        args(),
        "levels[0].time: 00:10:00 exceeds the MaxTime of partition 'devel'",
    ),
    # ---- array specs
    ("array-malformed", ladder(OK_LADDER), args("--array=0-"), "invalid --array '0-'"),
    ("array-descending", ladder(OK_LADDER), args("--array=5-1"), "range end 1 is below start 5"),
    ("array-zero-throttle", ladder(OK_LADDER), args("--array=0-3%0"), "throttle"),
    (  # indices above MaxArraySize are run in pieces (test_pieces_e2e); the queue's size is not
        "array-above-max-job-count",
        ladder(OK_LADDER),
        args("--array=0-100000"),
        "--array has 100001 tasks; this cluster holds at most 100000 jobs at once (MaxJobCount)",
    ),
    (
        "array-above-max-with-wrap",
        ladder(OK_LADDER),
        ["--job-name={name}", "--array=0-2001", "--wrap=true"],
        "such indices run through a wrapper script, so give a job script instead of --wrap",
    ),
    ("array-twice", ladder(OK_LADDER), args("--array=0-3", "--array=5"), "--array given twice"),
    # ---- the script
    ("script-missing", {}, ["--job-name={name}", "nope.sh"], "job script 'nope.sh' not found"),
    ("script-directory", {"dir/x": "x"}, ["--job-name={name}", "./dir"], "is a directory"),
    (
        "script-binary",
        {"bin.sh": "#!/bin/bash\n\0\1\2"},
        ["--job-name={name}", "bin.sh"],
        "contains NUL bytes",
    ),
    (
        "script-no-shebang",
        {"j.sh": "echo hi\n"},
        ["--job-name={name}", "j.sh"],
        "does not look like a batch script",
    ),
    ("script-empty", {"j.sh": ""}, ["--job-name={name}", "j.sh"], "is empty"),
    (
        "script-crlf",
        {"j.sh": "#!/bin/bash\r\necho hi\r\n"},
        ["--job-name={name}", "j.sh"],
        "DOS line breaks",
    ),
    ("script-dangling-link", {}, ["--job-name={name}", "link.sh"], "not found"),
    (
        "script-bad-directive",
        {"j.sh": "#!/bin/bash\n#SBATCH --frobnicate\necho\n"},
        ["--job-name={name}", "j.sh"],
        "--frobnicate",
    ),
    # ---- --export
    (
        "export-empty-item",
        {"job.sh": JOB},
        ["--job-name={name}", "--export=ALL,,X=1", "job.sh"],
        "empty item",
    ),
    (
        "export-bad-name",
        {"job.sh": JOB},
        ["--job-name={name}", "--export=ALL,1X=2", "job.sh"],
        "'1X' is not a variable name",
    ),
    (
        "export-unclosed-quote",
        {"job.sh": JOB},
        ["--job-name={name}", '--export=ALL,X="a,b', "job.sh"],
        "unclosed",
    ),
    # ---- conflicting or misplaced options
    (
        "conflict-mem",
        {"job.sh": JOB},
        ["--job-name={name}", "--mem=1G", "--mem-per-cpu=1G", "job.sh"],
        "mutually exclusive",
    ),
    (
        "own-option-late",
        {"job.sh": JOB},
        ["--job-name={name}", "--detached", "job.sh"],
        "--detached is an option of this tool: put it before any sbatch option",
    ),
    ("wait-refused", {"job.sh": JOB}, ["--job-name={name}", "--wait", "job.sh"], "--wait"),
    (
        "wrap-and-script",
        {"job.sh": JOB},
        ["--job-name={name}", "--wrap=true", "job.sh"],
        "--wrap replaces the job script",
    ),
    (
        "unknown-sbatch-option",
        {"job.sh": JOB},
        ["--job-name={name}", "--frob", "job.sh"],
        "unknown sbatch option '--frob'",
    ),
    ("no-script", {}, ["--job-name={name}"], "no job script given"),
    (
        "start-above-max",
        ladder(OK_LADDER + "  - {partition: day, mem: 400M}\n"),
        [
            "--config",
            "ladder.yaml",
            "--start-level",
            "1",
            "--max-level",
            "0",
            "--job-name={name}",
            "job.sh",
        ],
        "--max-level 0 is below --start-level 1",
    ),
    (
        "max-level-range",
        ladder(OK_LADDER),
        ["--config", "ladder.yaml", "--max-level", "4", "--job-name={name}", "job.sh"],
        "--max-level 4 is outside the ladder",
    ),
    (
        "min-poll-negative",
        {"job.sh": JOB},
        ["--min-poll", "-1", "--job-name={name}", "job.sh"],
        "--min-poll must be positive",
    ),
    (
        "min-poll-not-number",
        {"job.sh": JOB},
        ["--min-poll", "soon", "--job-name={name}", "job.sh"],
        "'soon' is not a valid float",
    ),
    # ---- the environment
    ("state-dir-unwritable", {"job.sh": JOB}, ["--job-name={name}", "job.sh"], "cannot create"),
    (
        "state-dir-full",
        {"job.sh": JOB},
        ["--job-name={name}", "job.sh"],
        "No space left on device",
    ),
    (
        "home-unset-no-passwd-entry",
        {"job.sh": JOB},
        ["--job-name={name}", "job.sh"],
        "HOME is not set and this user has no password entry",
    ),
]


def _full_filesystem(mount: Path, request) -> Path:
    """A 64 KiB tmpfs filled to the last byte (the tests run as root in CI)."""
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount)], check=True)
    request.addfinalizer(lambda: subprocess.run(["umount", "-l", str(mount)], check=False))
    (mount / "state").mkdir()
    try:
        with open(mount / "filler", "wb") as f:
            while True:
                f.write(b"\0" * 4096)
                f.flush()
    except OSError:  # ENOSPC: the filesystem is full
        pass
    return mount / "state"


NO_PASSWD = r"""
#include <pwd.h>
#include <stddef.h>
struct passwd *getpwuid(unsigned int uid) { (void)uid; return NULL; }
int getpwuid_r(unsigned int uid, struct passwd *pw, char *buf, size_t len, struct passwd **out)
{ (void)uid; (void)pw; (void)buf; (void)len; *out = NULL; return 0; }
"""


def _no_passwd_entry(directory: Path) -> Path:
    """A preload library that makes the password database forget every user."""
    source = directory / "nopasswd.c"
    source.write_text(NO_PASSWD)
    library = directory / "nopasswd.so"
    subprocess.run(["gcc", "-shared", "-fPIC", "-o", str(library), str(source)], check=True)
    return library


def _nothing_submitted(name: str) -> None:
    since = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(time.time() - 600))
    sacct = subprocess.run(
        ["sacct", "-n", "-X", f"--name={name}", f"--starttime={since}", "-o", "JobID"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    squeue = subprocess.run(
        ["squeue", "-h", f"--name={name}"], capture_output=True, text=True, timeout=60, check=True
    )
    assert sacct.stdout.strip() == "" and squeue.stdout.strip() == "", (sacct.stdout, squeue.stdout)


@pytest.mark.timeout(120)
@pytest.mark.parametrize(
    ("files", "argv", "message"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_bad_input(e2e, request, files, argv, message):
    for path, text in files.items():
        target = e2e.dir / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(text.encode("latin-1"))
    if "dangling" in request.node.name:
        os.symlink(e2e.dir / "gone.sh", e2e.dir / "link.sh")
    env = dict(e2e.env)
    if "state-dir-unwritable" in request.node.name:
        env["SLURM_ESCALATE_HOME"] = "/sys/slurm-escalate-test"  # sysfs: not even root may mkdir
    if "state-dir-full" in request.node.name:
        env["SLURM_ESCALATE_HOME"] = str(_full_filesystem(e2e.dir / "full", request))
    if "home-unset" in request.node.name:
        env = {k: v for k, v in env.items() if k not in ("HOME", "SLURM_ESCALATE_HOME")}
        env.pop("XDG_STATE_HOME", None)
        env["LD_PRELOAD"] = str(_no_passwd_entry(e2e.dir))
    argv = [a.replace("{name}", e2e.job_name) for a in argv]
    r = e2e.sbatch_escalate(*argv, timeout=60, env=env)
    assert r.returncode == 2, r.describe()
    assert "Traceback" not in r.stderr and r.stdout == "", r.describe()
    lines = r.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("sbatch_escalate: error: "), r.describe()
    assert message in lines[0], r.describe()
    _nothing_submitted(e2e.job_name)
    assert not any(e2e.chain_dirs()), "a usage error left a chain directory behind"


def test_the_catalogue_has_at_least_40_cases():
    assert len(CASES) >= 40
