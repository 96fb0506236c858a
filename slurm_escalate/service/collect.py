"""Gather what a report needs from the state directory: chain, level resources, logs."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from slurm_escalate.core.chain import Chain
from slurm_escalate.core.ladder import level_at
from slurm_escalate.core.models import Level
from slurm_escalate.errors import EscalateError, UsageError
from slurm_escalate.reporting.logs import task_logs
from slurm_escalate.reporting.model import ReportData
from slurm_escalate.reporting.sqlite import write_sqlite
from slurm_escalate.reporting.stats import build_report, problem_indices
from slurm_escalate.service.env import Env
from slurm_escalate.service.prepare import stored_policy
from slurm_escalate.state.store import ChainStore


def levels_for(chain: Chain, store: ChainStore) -> dict[int, Level]:
    """Each level's resources from the chain's ladder copy (or the built-in policy).

    Empty when the copy is gone or unreadable: the report then shows what sacct saw.
    """
    try:
        policy = stored_policy(chain, store)
        top = policy.top_level
        if chain.max_level is not None:
            top = min(top, chain.max_level)
        return {lv: level_at(policy, lv, chain.base) for lv in range(top + 1)}
    except (EscalateError, ValueError):
        return {}


def escalation_of(chain: Chain, store: ChainStore) -> str:
    try:
        return stored_policy(chain, store).escalation
    except EscalateError:
        return "unknown"


def chain_report(chain: Chain, store: ChainStore) -> ReportData:
    logs = task_logs(chain, problem_indices(chain))
    return build_report(chain, levels_for(chain, store), logs, escalation_of(chain, store))


def load_reports(
    store: ChainStore, chain_ref: str | None, all_chains: bool
) -> tuple[list[ReportData], list[str]]:
    """Reports of one chain (errors raise) or of every chain (bad ones become warnings)."""
    if all_chains == (chain_ref is not None):
        raise UsageError("give a CHAIN or --all (not both)")
    if chain_ref is not None:
        return [chain_report(store.load(chain_ref), store)], []
    reports, warnings = [], []
    for chain_id in store.chain_ids():
        try:
            reports.append(chain_report(store.load(chain_id), store))
        except EscalateError as e:
            warnings.append(str(e))
    return reports, warnings


@dataclass(frozen=True)
class ReportInput:
    chain_ref: str | None = None
    all_chains: bool = False
    db: str | None = None  # also export to this SQLite file


@dataclass(frozen=True)
class Reports:
    reports: list[ReportData]
    now: float
    db_written: int | None = None  # chains exported to ``db``


def report(env: Env, inp: ReportInput, warn: Callable[[str], None]) -> Reports:
    """The reports of one chain (or every chain, bad ones as warnings); the SQLite export."""
    now = env.clock.now()
    reports, warnings = load_reports(env.store, inp.chain_ref, inp.all_chains)
    for warning in warnings:
        warn(warning)
    written = None
    if inp.db is not None:
        write_sqlite(inp.db, reports)
        written = len(reports)
    return Reports(reports, now, written)
