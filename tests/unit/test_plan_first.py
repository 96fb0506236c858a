"""The one plan of a first submission and ``finalize``: pure, and exactly what sbatch gets."""

from __future__ import annotations

from pathlib import Path

from slurm_escalate.core.ladder import builtin_policy
from slurm_escalate.core.models import Level, Policy
from slurm_escalate.sbatch.args import make_request, requested_level
from slurm_escalate.sbatch.plan import PlanContext, cpus_at, finalize, plan_first

CHAIN = "20261122-101500-ab12"
DIR = "/state/chains/" + CHAIN
COPY = DIR + "/script/job.sh"


def context(tokens: list[str], text: str | None, policy: Policy | None = None, **kw) -> PlanContext:
    request = make_request(tokens, text)
    base = requested_level(request)
    return PlanContext(
        request=request,
        policy=policy or builtin_policy(base.mem_mb, base.time_s),
        base=base,
        chain_id=CHAIN,
        start_level=0,
        script_path=COPY if request.script else None,
        throttle=kw.pop("throttle", None),
        is_array=kw.pop("is_array", False),
        max_array_size=kw.pop("max_array_size", 1001),
        **kw,
    )


def test_the_token_goes_before_the_script_and_its_arguments(tmp_path: Path):
    ctx = context(["--array=0-3%2", "job.sh", "a b"], "#!/bin/sh\n", is_array=True, throttle=2)
    (plan,) = plan_first(ctx, [0, 1, 2, 3])
    assert (plan.array, plan.indices) == ("0-3%2", (0, 1, 2, 3))
    final = finalize(ctx, plan, 1, str(tmp_path))
    assert final.args == ("--array=0-3%2", f"--comment=slurm-escalate:{CHAIN}:1", COPY, "a b")
    assert (final.token, final.files) == (f"slurm-escalate:{CHAIN}:1", ())
    assert list(tmp_path.iterdir()) == []  # pure: nothing written


def test_wrap_gets_its_token_at_the_end_and_a_users_comment_gets_none():
    ctx = context(["--mem=1G", "--wrap", "echo hi"], None)
    (plan,) = plan_first(ctx, [])
    assert finalize(ctx, plan, 4, DIR).args == (
        "--mem=1G", "--wrap", "echo hi", f"--comment=slurm-escalate:{CHAIN}:4",
    )  # fmt: skip
    ctx = context(["--comment=mine", "job.sh"], "#!/bin/sh\n")
    (plan,) = plan_first(ctx, [])
    final = finalize(ctx, plan, 1, DIR)
    assert (final.args, final.token) == (("--comment=mine", COPY), None)


def test_a_clashing_directive_and_a_mapped_piece_name_their_files():
    ladder = Policy(levels=(Level(mem_mb=400),))
    text = "#!/bin/sh\n#SBATCH --mem-per-cpu=100M\necho\n"
    ctx = context(["--array=0,1500", "job.sh"], text, ladder, is_array=True)
    plans = plan_first(ctx, [0, 1500])
    assert [p.offset for p in plans] == [0, 1000]
    first, second = (finalize(ctx, p, seq, DIR) for seq, p in enumerate(plans, 1))
    assert [(f.path, f.mode, f.kind) for f in first.files] == [
        (DIR + "/script/1/job.sh", 0o600, "unclashed")
    ]
    assert first.args[-1] == DIR + "/script/1/job.sh"
    assert [(f.path, f.mode, f.kind) for f in second.files] == [
        (DIR + "/script/2/job.sh", 0o700, "unclashed"),
        (DIR + "/script/2/array-wrapper.sh", 0o600, "wrapper"),
    ]
    assert second.args[-1] == DIR + "/script/2/array-wrapper.sh"
    wrapper = second.files[1].content or ""
    assert "SLURM_ARRAY_TASK_ID + 1000" in wrapper and "script/2/job.sh" in wrapper
    assert "--mem-per-cpu" not in (second.files[0].content or "")


def test_cpus_come_from_the_level_else_the_request():
    ctx = context(["--cpus-per-task=3", "job.sh"], "#!/bin/sh\n")
    assert cpus_at(ctx, 0) == 3
    ladder = Policy(levels=(Level(mem_mb=100), Level(mem_mb=200, cpus_per_task=8)))
    ctx = context(["job.sh"], "#!/bin/sh\n", ladder)
    assert (cpus_at(ctx, 0), cpus_at(ctx, 1)) == (1, 8)
