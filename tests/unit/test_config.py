"""Ladder YAML: loading, exact error messages, cluster checks and level resources."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from slurm_escalate.core.ladder import (
    builtin_policy,
    check_against_cluster,
    level_at,
    multiplier_level,
    policy_from_mapping,
)
from slurm_escalate.core.models import (
    DEFAULT_EXIT_CODES,
    DEFAULT_STATE_HANDLING,
    Action,
    FailureKind,
    Level,
    MultiplierPolicy,
    PartitionInfo,
    Policy,
)
from slurm_escalate.errors import ConfigError
from slurm_escalate.state.ladder_file import load_policy

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "ladder.yaml"

FULL = """\
levels:                       # lowest first
  - {partition: devel, mem: 1G, time: "00:01:00"}
  - {partition: "day,week", mem: 2G, time: "00:02:00"}
  - {partition: week, mem: 8G, time: "00:08:00", cpus-per-task: 2, gres: "gpu:1", qos: high,
     account: lab, constraint: avx2, extra_args: ["--exclusive"]}
state_handling:
  OUT_OF_MEMORY: escalate
  TIMEOUT: resubmit
  DEADLINE: escalate
  PREEMPTED: resubmit
  NODE_FAIL: resubmit
  BOOT_FAIL: resubmit
  FAILED: no_retry
  CANCELLED: no_retry
  exit_codes: {137: escalate, 42: resubmit}
max_resubmits: 5
escalation: skip
"""


def write(tmp_path: Path, text: str, name: str = "ladder.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_full_example_from_the_docs(tmp_path: Path) -> None:
    path = write(tmp_path, FULL)
    policy = load_policy(path)
    assert policy.source == str(path)
    assert policy.levels == (
        Level(partition="devel", mem_mb=1024, time_s=60),
        Level(partition="day,week", mem_mb=2048, time_s=120),
        Level(
            partition="week",
            mem_mb=8192,
            time_s=480,
            cpus_per_task=2,
            gres="gpu:1",
            qos="high",
            account="lab",
            constraint="avx2",
            extra_args=("--exclusive",),
        ),
    )
    assert policy.state_handling[FailureKind.TIMEOUT] is Action.RESUBMIT
    assert policy.exit_codes == {137: Action.ESCALATE, 42: Action.RESUBMIT}
    assert policy.max_resubmits == 5
    assert policy.escalation == "skip"
    assert policy.top_level == 2


def test_defaults_for_missing_sections() -> None:
    policy = policy_from_mapping({"levels": [{"mem": "1G"}]}, "x.yaml")
    assert policy.state_handling == DEFAULT_STATE_HANDLING
    assert policy.exit_codes == DEFAULT_EXIT_CODES
    assert policy.max_resubmits == 3
    assert policy.escalation == "step"
    assert policy.multiplier is None


def test_partial_state_handling_keeps_other_defaults() -> None:
    policy = policy_from_mapping(
        {"levels": [{"mem": 1024}], "state_handling": {"timeout": "RESUBMIT"}}, "x.yaml"
    )
    expected = dict(DEFAULT_STATE_HANDLING)
    expected[FailureKind.TIMEOUT] = Action.RESUBMIT
    assert policy.state_handling == expected
    assert policy.exit_codes == {137: Action.ESCALATE}  # absent: default


@pytest.mark.parametrize(
    ("exit_codes", "expected"),
    [
        ({}, {}),
        (None, {}),
        ({"3": "no_retry", 0: "resubmit"}, {3: Action.NO_RETRY, 0: Action.RESUBMIT}),
    ],
)
def test_exit_codes_given_replace_the_default(exit_codes: object, expected: object) -> None:
    data = {"levels": [{"mem": "1G"}], "state_handling": {"exit_codes": exit_codes}}
    assert policy_from_mapping(data, "x.yaml").exit_codes == expected


@pytest.mark.parametrize(
    ("level_yaml", "expected"),
    [
        ("{cpus_per_task: 4}", Level(cpus_per_task=4)),
        ("{cpus-per-task: 4}", Level(cpus_per_task=4)),
        ("{extra: [--exclusive, --nice=5]}", Level(extra_args=("--exclusive", "--nice=5"))),
        ("{partition: 'day, week'}", Level(partition="day,week")),
        ("{account: 12345, qos: 7}", Level(account="12345", qos="7")),
        ("{mem: 1024, time: 90}", Level(mem_mb=1024, time_s=90 * 60)),  # sbatch units: MiB, min
        ("{mem: 1.5G}", Level(mem_mb=1536)),
        ("{mem: 1G, gres: null}", Level(mem_mb=1024)),
        # YAML 1.1 would read these unquoted as base-60 ints (3600, 90, 600 "minutes").
        ("{time: 1:00:00}", Level(time_s=3600)),
        ("{time: 1:30}", Level(time_s=90)),  # sbatch M:S
        ("{time: 10:00}", Level(time_s=600)),
        ("{time: 00:01:00}", Level(time_s=60)),
        ("{time: 2-00:00:00}", Level(time_s=2 * 86400)),
        ("{time: '1:00:00'}", Level(time_s=3600)),
    ],
)
def test_level_spellings(tmp_path: Path, level_yaml: str, expected: Level) -> None:
    policy = load_policy(write(tmp_path, f"levels:\n  - {level_yaml}\n"))
    assert policy.levels == (expected,)


def test_multiplier_only_config(tmp_path: Path) -> None:
    text = (
        "multiplier: {memory_factor: 2, time_factor: 1.5, max_mem: 64G,"
        ' max_time: "2-00:00:00", max_steps: 3}\n'
    )
    policy = load_policy(write(tmp_path, text))
    assert policy.levels == ()
    assert policy.multiplier == MultiplierPolicy(2.0, 1.5, 65536, 172800, 3)
    assert policy.top_level == 3


def test_state_handling_only_config_uses_default_multiplier() -> None:
    policy = policy_from_mapping({"state_handling": {"TIMEOUT": "resubmit"}}, "x.yaml")
    assert policy.multiplier == MultiplierPolicy()


LEVELS_3 = """\
levels:
  - {mem: 1G, time: "00:01:00"}
  - {mem: 2G, time: "00:02:00"}
"""

ERRORS = [
    # the examples from the design
    (
        "levels:\n  - {mem: 1G}\n  - {mem: 2X}\n",
        "levels[1].mem: not a memory size: '2X' (expected e.g. 512M, 4G)",
    ),
    (
        LEVELS_3 + "  - {mem: 1G, time: 00:01:00, partition: week}\n",
        (
            "levels[2]: does not increase: mem 1G and time 00:01:00 are not above levels[1]"
            " (2G, 00:02:00)"
        ),
    ),
    (
        "levles: []\n",
        (
            "unknown key 'levles' (expected one of: levels, state_handling, max_resubmits,"
            " escalation, skip_headroom, multiplier, on_complete, on_exhausted, recovery_hook,"
            " hook_timeout)"
        ),
    ),
    (
        "state_handling: {OOM: escalate}\n",
        (
            "state_handling.OOM: unknown state (expected one of OUT_OF_MEMORY, TIMEOUT, DEADLINE,"
            " PREEMPTED, NODE_FAIL, BOOT_FAIL, FAILED, CANCELLED, exit_codes)"
        ),
    ),
    (
        "state_handling: {TIMEOUT: retry}\n",
        "state_handling.TIMEOUT: unknown action 'retry' (expected escalate, resubmit, no_retry)",
    ),
    (
        "state_handling: {exit_codes: {300: escalate}}\n",
        "state_handling.exit_codes.300: exit code out of range 0-255",
    ),
    # YAML syntax, empty file, wrong top level
    (
        "a: b: c\n",
        "line 1, column 5: invalid YAML: mapping values are not allowed here",
    ),
    (
        "levels: [\n",
        (
            "line 2, column 1: invalid YAML: while parsing a flow node, expected the node content,"
            " but found '<stream end>'"
        ),
    ),
    ("levels:\n  - mem: 1G\n    mem: 2G\n", "line 3, column 5: invalid YAML: duplicate key 'mem'"),
    ("", "empty file (expected a mapping with 'levels' or 'multiplier')"),
    ("# just a comment\n", "empty file (expected a mapping with 'levels' or 'multiplier')"),
    ("- {mem: 1G}\n", "top level must be a mapping (levels: ...), got a list"),
    ("just text\n", "top level must be a mapping (levels: ...), got 'just text'"),
    # wrong types
    ("levels: {mem: 1G}\n", "levels: expected a list of levels (lowest first), got a mapping"),
    ("levels: []\n", "levels: empty list (give at least one level, or leave levels out)"),
    (
        "levels:\n  - 5\n",
        "levels[0]: expected a mapping like {mem: 4G, time: 1:00:00}, got 5",
    ),
    ("levels:\n  - {mem: [1, 2]}\n", "levels[0].mem: expected a memory size like 4G, got a list"),
    (
        "levels:\n  - {time: {h: 1}}\n",
        "levels[0].time: expected a time like 01:00:00, got a mapping",
    ),
    ("levels:\n  - {mem: true}\n", "levels[0].mem: expected a memory size like 4G, got True"),
    (
        "levels:\n  - {mem: 1G, cpus-per-task: two}\n",
        "levels[0].cpus-per-task: expected a positive integer, got 'two'",
    ),
    ("levels:\n  - {gres: [gpu]}\n", "levels[0].gres: expected a non-empty string, got a list"),
    ("levels:\n  - {qos: ''}\n", "levels[0].qos: expected a non-empty string, got ''"),
    (
        "levels:\n  - {mem: 1G, extra: --exclusive}\n",
        "levels[0].extra: expected a list of strings, got '--exclusive'",
    ),
    (
        "levels:\n  - {mem: 1G, extra_args: [--a, 1]}\n",
        "levels[0].extra_args[1]: expected a non-empty string, got 1",
    ),
    (
        "levels:\n  - {partition: 'day,,week'}\n",
        "levels[0].partition: bad partition list 'day,,week' (expected e.g. day or day,week)",
    ),
    ("max_resubmits: -1\n", "max_resubmits: expected an integer >= 0, got -1"),
    ("max_resubmits: many\n", "max_resubmits: expected an integer >= 0, got 'many'"),
    ("escalation: jump\n", "escalation: unknown value 'jump' (expected step, skip)"),
    (
        "skip_headroom: -0.1\n",
        "skip_headroom: expected a fraction between 0 and 10 such as 0.2 (or 20%), got -0.1",
    ),
    (
        "skip_headroom: lots\n",
        "skip_headroom: expected a fraction between 0 and 10 such as 0.2 (or 20%), got 'lots'",
    ),
    (
        "state_handling: [TIMEOUT]\n",
        "state_handling: expected a mapping like {TIMEOUT: resubmit}, got a list",
    ),
    (
        "state_handling: {FAILED: no}\n",
        (
            "state_handling.FAILED: unknown action False (expected escalate, resubmit, no_retry;"
            " YAML reads unquoted yes/no/on/off as true/false)"
        ),
    ),
    (
        "state_handling: {COMPLETED: escalate}\n",
        (
            "state_handling.COMPLETED: unknown state (expected one of OUT_OF_MEMORY, TIMEOUT,"
            " DEADLINE, PREEMPTED, NODE_FAIL, BOOT_FAIL, FAILED, CANCELLED, exit_codes)"
        ),
    ),
    (
        "state_handling: {exit_codes: [137]}\n",
        "state_handling.exit_codes: expected a mapping like {137: escalate}, got a list",
    ),
    (
        "state_handling: {exit_codes: {-1: escalate}}\n",
        "state_handling.exit_codes.-1: exit code out of range 0-255",
    ),
    (
        "state_handling: {exit_codes: {oom: escalate}}\n",
        "state_handling.exit_codes.oom: not an exit code (expected an integer 0-255)",
    ),
    (
        "state_handling: {exit_codes: {137: bigger}}\n",
        (
            "state_handling.exit_codes.137: unknown action 'bigger' (expected escalate, resubmit,"
            " no_retry)"
        ),
    ),
    # unknown keys at every level
    (
        "levels:\n  - {memory: 1G}\n",
        (
            "levels[0]: unknown key 'memory' (expected one of: partition, mem, time, cpus-per-task,"
            " gres, qos, account, constraint, extra_args)"
        ),
    ),
    (
        "multiplier: {factor: 2}\n",
        (
            "multiplier: unknown key 'factor' (expected one of: memory_factor, time_factor,"
            " max_mem, max_time, max_steps)"
        ),
    ),
    (
        "levels:\n  - {mem: 1G, cpus-per-task: 2, cpus_per_task: 2}\n",
        "levels[0]: both 'cpus-per-task' and 'cpus_per_task' given",
    ),
    # memory and time values
    ("levels:\n  - {mem: 0}\n", "levels[0].mem: must be positive: 0"),
    ("levels:\n  - {mem: 0G}\n", "levels[0].mem: must be positive: '0G'"),
    ("levels:\n  - {mem: -1G}\n", "levels[0].mem: must be positive: '-1G'"),
    ("levels:\n  - {mem: -512}\n", "levels[0].mem: must be positive: -512"),
    (
        "levels:\n  - {mem: 1.5}\n",
        "levels[0].mem: not a memory size: 1.5 (expected e.g. 512M, 4G)",
    ),
    ("levels:\n  - {time: 0}\n", "levels[0].time: must be positive: 0"),
    ("levels:\n  - {time: 00:00:00}\n", "levels[0].time: must be positive: '00:00:00'"),
    (
        "levels:\n  - {time: 1:70}\n",
        "levels[0].time: not a time: '1:70' (expected minutes or e.g. 01:00:00, 1-00:00:00)",
    ),
    (
        "levels:\n  - {time: 1h}\n",
        "levels[0].time: not a time: '1h' (expected minutes or e.g. 01:00:00, 1-00:00:00)",
    ),
    # the ladder's shape
    ("levels:\n  - {}\n", "levels[0]: empty level (set at least one of mem, time, partition, ...)"),
    ("levels:\n  - {mem: 1G}\n  - {mem: 1G}\n", "levels[1]: duplicate of levels[0]"),
    (
        LEVELS_3 + "  - {mem: 1G, time: '00:01:00'}\n",
        "levels[2]: duplicate of levels[0]",
    ),
    (
        "levels:\n  - {mem: 1G, time: 10}\n  - {mem: 2G, time: 5}\n",
        "levels[1]: does not increase: time 00:05:00 is not above levels[0] (00:10:00)",
    ),
    (
        "levels:\n  - {mem: 2G}\n  - {mem: 1G, partition: week}\n",
        "levels[1]: does not increase: mem 1G is not above levels[0] (2G)",
    ),
    # multiplier values
    (
        "multiplier: {memory_factor: 0.5}\n",
        "multiplier.memory_factor: expected a number >= 1, got 0.5",
    ),
    (
        "multiplier: {memory_factor: 1, time_factor: 1}\n",
        "multiplier: memory_factor and time_factor are both 1: nothing would grow",
    ),
    ("multiplier: {max_steps: 0}\n", "multiplier.max_steps: expected a positive integer, got 0"),
    (
        "multiplier: {max_mem: lots}\n",
        "multiplier.max_mem: not a memory size: 'lots' (expected e.g. 512M, 4G)",
    ),
    ("multiplier: 2\n", "multiplier: expected a mapping like {memory_factor: 2}, got 2"),
]


@pytest.mark.parametrize(("text", "message"), ERRORS)
def test_config_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str, message: str
) -> None:
    monkeypatch.chdir(tmp_path)
    write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_policy("ladder.yaml")
    assert str(info.value) == f"ladder.yaml: {message}"
    assert "\n" not in str(info.value)


def test_missing_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match=r"^ladder\.yaml: no such file$"):
        load_policy("ladder.yaml")


def test_directory_is_not_a_ladder(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^.*: cannot read: is a directory$"):
        load_policy(tmp_path)


def test_non_utf8_file(tmp_path: Path) -> None:
    path = tmp_path / "ladder.yaml"
    path.write_bytes(b"levels:\n  - {mem: \xff}\n")
    with pytest.raises(ConfigError, match=r"not UTF-8 text$"):
        load_policy(path)


def test_policy_from_mapping_is_pure() -> None:
    with pytest.raises(ConfigError) as info:
        policy_from_mapping({"levels": [{"mem": "2X"}]}, "inline")
    assert (
        str(info.value) == "inline: levels[0].mem: not a memory size: '2X' (expected e.g. 512M, 4G)"
    )


TEST_CLUSTER = {
    "devel": PartitionInfo("devel", max_time_s=120, max_node_mem_mb=1000),
    "day": PartitionInfo("day", max_time_s=300, max_node_mem_mb=2000, is_default=True),
    "week": PartitionInfo("week", max_time_s=900, max_node_mem_mb=8000),
    "gpu": PartitionInfo("gpu", max_time_s=None, max_node_mem_mb=None),
}


@pytest.mark.parametrize(
    ("level", "message"),
    [
        (Level(partition="devel", mem_mb=1000, time_s=120), None),
        (Level(partition="day,week", mem_mb=8000, time_s=900), None),  # fits week
        (Level(partition="gpu", mem_mb=10**6, time_s=10**7), None),  # unknown limits
        (Level(mem_mb=10**6, time_s=10**7), None),  # no partition: the user's choice
        (
            Level(partition="devel", mem_mb=16384),
            "levels[0].mem: 16G exceeds the largest node of partition 'devel' (1000M)",
        ),
        (
            Level(partition="devel,day", mem_mb=2001),
            "levels[0].mem: 2001M exceeds the largest node of partitions 'devel,day' (2000M)",
        ),
        (
            Level(partition="devel", time_s=180),
            "levels[0].time: 00:03:00 exceeds the MaxTime of partition 'devel' (00:02:00)",
        ),
        (
            Level(partition="devel,day", time_s=301),
            "levels[0].time: 00:05:01 exceeds the MaxTime of partitions 'devel,day' (00:05:00)",
        ),
        (
            Level(partition="day,wek", mem_mb=1),
            (
                "levels[0].partition: no partition 'wek' on this cluster"
                " (partitions: day, devel, gpu, week)"
            ),
        ),
    ],
)
def test_check_against_cluster(level: Level, message: str | None) -> None:
    policy = Policy(levels=(level,), source="ladder.yaml")
    if message is None:
        check_against_cluster(policy, TEST_CLUSTER)
    else:
        with pytest.raises(ConfigError) as info:
            check_against_cluster(policy, TEST_CLUSTER)
        assert str(info.value) == f"ladder.yaml: {message}"


def test_check_names_the_failing_level() -> None:
    policy = Policy(
        levels=(Level(partition="devel", mem_mb=500), Level(partition="day", mem_mb=4000)),
        source="l.yaml",
    )
    with pytest.raises(ConfigError, match=r"^l\.yaml: levels\[1\]\.mem: 4000M exceeds"):
        check_against_cluster(policy, TEST_CLUSTER)


def test_example_ladder_fits_the_test_cluster() -> None:
    policy = load_policy(EXAMPLE)
    check_against_cluster(policy, TEST_CLUSTER)
    assert [(lv.partition, lv.mem_mb, lv.time_s) for lv in policy.levels] == [
        ("devel", 400, 60),
        ("day", 1000, 120),
        ("week", 3000, 240),
    ]


def test_builtin_policy() -> None:
    policy = builtin_policy(1000, 600)
    assert policy.levels == ()
    assert policy.multiplier == MultiplierPolicy(2.0, 2.0, 16000, 9600, 4)
    assert policy.state_handling == DEFAULT_STATE_HANDLING
    assert policy.top_level == 4
    assert builtin_policy(None, None).multiplier == MultiplierPolicy(2.0, 2.0, None, None, 4)


BASE = Level(partition="day", mem_mb=1000, time_s=60, qos="normal")


@pytest.mark.parametrize(
    ("level", "mem_mb", "time_s"),
    [(0, 1000, 60), (1, 2000, 120), (2, 3000, 240), (3, 3000, 300), (4, 3000, 300)],
)
def test_level_at_multiplier_is_capped(level: int, mem_mb: int, time_s: int) -> None:
    policy = Policy(multiplier=MultiplierPolicy(2, 2, max_mem_mb=3000, max_time_s=300))
    assert level_at(policy, level, BASE) == Level(
        partition="day", mem_mb=mem_mb, time_s=time_s, qos="normal"
    )


def test_level_at_ladder_ignores_base() -> None:
    policy = policy_from_mapping({"levels": [{"mem": "1G"}, {"mem": "2G"}]}, "x")
    assert level_at(policy, 1, BASE) == Level(mem_mb=2048)
    with pytest.raises(ValueError, match="above the top"):
        level_at(policy, 2, BASE)


def test_multiplier_level_grows_only_what_is_asked() -> None:
    m = MultiplierPolicy(2, 3)
    assert multiplier_level(m, BASE, 2, 0) == Level("day", 4000, 60, qos="normal")
    assert multiplier_level(m, BASE, 0, 1) == Level("day", 1000, 180, qos="normal")
    assert multiplier_level(m, Level(), 3, 3) == Level()  # nothing asked, nothing to grow
    assert multiplier_level(MultiplierPolicy(1.1, 1.5), BASE, 1, 1).mem_mb == 1100  # no float noise


def test_cap_below_request_does_not_shrink_the_job() -> None:
    policy = Policy(multiplier=MultiplierPolicy(2, 2, max_mem_mb=500, max_time_s=30))
    assert level_at(policy, 2, BASE) == BASE


@given(
    mem=st.integers(1, 10**6),
    time=st.integers(1, 10**6),
    level=st.integers(0, 6),
    factor=st.floats(1, 4),
    cap=st.integers(1, 10**7),
)
def test_multiplier_bounds(mem: int, time: int, level: int, factor: float, cap: int) -> None:
    m = MultiplierPolicy(factor, factor, max_mem_mb=cap, max_time_s=cap, max_steps=6)
    grown = level_at(Policy(multiplier=m), level, Level(mem_mb=mem, time_s=time))
    assert grown.mem_mb is not None and grown.time_s is not None
    assert mem <= grown.mem_mb <= max(mem, cap)
    assert time <= grown.time_s <= max(time, cap)
    if level:
        lower = level_at(Policy(multiplier=m), level - 1, Level(mem_mb=mem, time_s=time))
        assert lower.mem_mb is not None and lower.mem_mb <= grown.mem_mb


@pytest.mark.parametrize(("text", "value"), [("", 0.2), ("0.35", 0.35), ("'50%'", 0.5), ("0", 0.0)])
def test_skip_headroom(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str, value: float
) -> None:
    monkeypatch.chdir(tmp_path)
    extra = f"skip_headroom: {text}\n" if text else ""
    write(tmp_path, "levels:\n  - {mem: 1G}\n  - {mem: 2G}\nescalation: skip\n" + extra)
    assert load_policy("ladder.yaml").skip_headroom == value
