"""``slurm-escalate suggest`` and ``sbatch_escalate --start-level auto``: sized from history.

Both read every earlier chain of the same script (the same *content*: each chain
keeps a copy of the script it ran, ``chains/<id>/script/<name>``) and hand what
their tasks needed to one pure rule, :func:`slurm_escalate.reporting.sizing.size`,
through one function here, :func:`sized`. No Slurm call: each attempt keeps what
sacct said of it (MaxRSS, Elapsed, ReqMem, Timelimit, outcome).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from slurm_escalate.core.chain import Chain
from slurm_escalate.core.ladder import level_at
from slurm_escalate.core.models import Level, Policy
from slurm_escalate.errors import EscalateError, StateError
from slurm_escalate.reporting.model import Need, Sizing
from slurm_escalate.reporting.sizing import evidence, size, task_need
from slurm_escalate.reporting.stats import task_rows
from slurm_escalate.sbatch.args import load_script, make_request, requested_level, resolve_script
from slurm_escalate.sbatch.plan import SCRIPT_DIR
from slurm_escalate.service.env import Env
from slurm_escalate.service.prepare import Prepared, SubmitOptions, ladder_policy, stored_policy
from slurm_escalate.state.store import ChainStore


@dataclass(frozen=True)
class History:
    """The earlier chains of one script and what their tasks needed."""

    chains: tuple[str, ...]  # their ids, oldest first
    needs: tuple[Need, ...]  # one per task that tells something of its size
    newest: Chain | None  # the newest of them
    skipped: tuple[str, ...] = ()  # chains of the script that could not be read, and why


@dataclass(frozen=True)
class Sized:
    """The rule applied to a history: the level, its figures and the one-line evidence."""

    history: History
    sizing: Sizing
    evidence: str


def levels_of(policy: Policy, base: Level, max_level: int | None = None) -> dict[int, Level]:
    """The resources of each level of ``policy`` a chain may use (up to ``max_level``)."""
    top = policy.top_level if max_level is None else min(policy.top_level, max_level)
    return {lv: level_at(policy, lv, base) for lv in range(top + 1)}


def _holds(directory: Path, data: bytes) -> bool:
    """Whether a chain's script directory holds a file with exactly ``data``."""
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return False
    for entry in entries:
        try:
            if entry.is_file() and entry.stat().st_size == len(data):
                if Path(entry.path).read_bytes() == data:
                    return True
        except OSError:
            continue
    return False


def history(store: ChainStore, script_text: str | None) -> History:
    """Every chain in ``store`` whose job script had exactly ``script_text``, oldest first."""
    if script_text is None:  # --wrap: no script to compare
        return History((), (), None)
    data = script_text.encode("utf-8")
    found: list[tuple[float, str, Chain, list[Need]]] = []
    skipped: list[str] = []
    for chain_id in store.chain_ids():
        if not _holds(store.chain_dir(chain_id) / SCRIPT_DIR, data):
            continue  # cheap: most chains are told apart without loading them
        try:
            chain = store.load(chain_id)
            if chain.script_copy is None or Path(chain.script_copy).read_bytes() != data:
                continue
        except (EscalateError, OSError) as e:
            skipped.append(f"{chain_id}: {e}")
            continue
        rows = task_rows(chain, _chain_levels(chain, store))
        needs = [n for t in rows if (n := task_need(t.attempts)) is not None]
        found.append((chain.created_at, chain_id, chain, needs))
    found.sort(key=lambda f: (f[0], f[1]))  # ids sort by the second only
    return History(
        tuple(f[1] for f in found),
        tuple(n for f in found for n in f[3]),
        found[-1][2] if found else None,
        tuple(skipped),
    )


def _chain_levels(chain: Chain, store: ChainStore) -> dict[int, Level]:
    """The chain's levels, to fill in what sacct did not report (empty when unreadable)."""
    try:
        return levels_of(stored_policy(chain, store), chain.base, chain.max_level)
    except (EscalateError, ValueError):
        return {}


def sized(hist: History, levels: Mapping[int, Level]) -> Sized:
    """The lowest of ``levels`` that covers the history's 95th percentiles (the one rule)."""
    sizing = size(hist.needs, levels)
    return Sized(hist, sizing, evidence(sizing, hist.chains))


# ------------------------------------------------------------------ --start-level auto


def auto_start(store: ChainStore, prepared: Prepared) -> tuple[Prepared, Sized]:
    """``prepared`` starting at the level its script's history asks for (0 without history).

    The levels are this submission's own (its ladder or the built-in policy, up to
    ``--max-level``), so the choice never leaves what it may use.
    """
    levels = levels_of(prepared.policy, prepared.base)
    found = sized(history(store, prepared.request.script_text), levels)
    policy = replace(prepared.policy, start_level=found.sizing.start_level)
    return replace(prepared, policy=policy), found


def auto_note(found: Sized) -> str:
    """The line a submission logs (and ``--dry-run`` prints) about the level it chose."""
    return f"start level {found.sizing.start_level} (--start-level auto): {found.evidence}"


# ------------------------------------------------------------------ suggest


@dataclass(frozen=True)
class SuggestInput:
    script: str  # as typed: found like sbatch finds it
    config: str | None = None  # a ladder file; else the newest matching chain's ladder


@dataclass(frozen=True)
class Suggestion:
    script: str  # the script's path, resolved
    ladder: str  # where the levels come from
    levels: dict[int, Level]
    found: Sized
    state_dir: str


def suggest(env: Env, inp: SuggestInput) -> Suggestion:
    """The level ``--start-level auto`` would choose for SCRIPT, with its evidence.

    Levels: ``--config``'s ladder (grown from the script's own #SBATCH resources
    for a multiplier policy), else those of the newest chain of the script.
    """
    cwd = env.cwd()
    path_env = env.environ.get("PATH")
    text = load_script(inp.script, cwd, path_env=path_env)
    path = resolve_script(inp.script, cwd, path_env=path_env)
    store = env.store
    hist = history(store, text)
    if inp.config is not None:
        base = requested_level(make_request([inp.script], text))
        policy, _ = ladder_policy(SubmitOptions(config=inp.config), base, cwd)
        levels = levels_of(policy, base)
        ladder = f"{inp.config} (--config)"
    elif hist.newest is not None:
        chain = hist.newest
        try:
            policy = stored_policy(chain, store)
        except EscalateError as e:
            raise StateError(
                f"chain {chain.chain_id}: cannot read its ladder ({e}): give --config"
            ) from None
        levels = levels_of(policy, chain.base, chain.max_level)
        what = f"ladder {chain.config}" if chain.config else policy.source or "built-in policy"
        ladder = f"{what} of chain {chain.chain_id}, the newest of them"
    else:
        levels = {}
        ladder = "none: no earlier chain, and no --config"
    return Suggestion(path, ladder, levels, sized(hist, levels), str(store.chains_dir))
