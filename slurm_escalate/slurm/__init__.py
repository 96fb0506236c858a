"""Adapter to the Slurm command-line tools: run them, parse what they print."""

from __future__ import annotations

from slurm_escalate.slurm.client import SlurmClient, SlurmCommands
from slurm_escalate.slurm.runner import CommandResult, CommandRunner, SubprocessRunner

__all__ = ["CommandResult", "CommandRunner", "SlurmClient", "SlurmCommands", "SubprocessRunner"]
