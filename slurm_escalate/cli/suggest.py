"""``slurm-escalate suggest``: the level the first attempt of a script should start at.

One service call (``service.suggest.suggest``: earlier chains of the same script,
the ladder, the rule), rendered here as text or JSON.
"""

from __future__ import annotations

import json

import click

from slurm_escalate.cli import complete
from slurm_escalate.cli.common import EXIT_OK, HELP, domain_errors, echo, pass_env
from slurm_escalate.reporting.sizing import suggestion_json, suggestion_lines
from slurm_escalate.service.env import Env
from slurm_escalate.service.suggest import SuggestInput
from slurm_escalate.service.suggest import suggest as suggest_level

SUGGEST_HELP = """Suggest the ladder level SCRIPT's first attempt should start at.

\b
Reads the earlier chains of the same script (the same content: each chain
keeps a copy of its script) in the state directory and prints the lowest
level whose mem and time cover the 95th percentile of what their tasks
needed, with headroom (memory +20%, time +10%), and the evidence: the
chains, the tasks and the figures. A task that completed measured its
MaxRSS and Elapsed; one that ran out of memory or time needed more than
that attempt had (a lower bound). No Slurm call is made.

\b
The levels are --config's ladder, else the ladder of the newest of those
chains. Without history it says so and suggests level 0.
`sbatch_escalate --start-level auto` applies the same rule when it submits.

\b
Examples:
  slurm-escalate suggest job.sbatch
  slurm-escalate suggest --config ladder.yaml job.sbatch --json
"""


@click.command("suggest", help=SUGGEST_HELP, context_settings=HELP)
@click.argument("script", metavar="SCRIPT", shell_complete=complete.files)
@click.option(
    "--config",
    metavar="FILE",
    help="Ladder YAML to choose from [default: the newest matching chain's].",
    shell_complete=complete.files,
)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@pass_env
@domain_errors
def suggest(env: Env, script: str, config: str | None, as_json: bool) -> int:
    found = suggest_level(env, SuggestInput(script, config))
    sized = found.found
    chains = sized.history.chains
    for skipped in sized.history.skipped:
        click.echo(f"warning: skipped chain {skipped}", err=True)
    if as_json:
        data = suggestion_json(
            sized.sizing, chains, found.ladder, found.levels, found.script, sized.evidence
        )
        echo(env, json.dumps(data, indent=2))
        return EXIT_OK
    for line in suggestion_lines(sized.sizing, chains, found.ladder, found.levels, found.state_dir):
        echo(env, line)
    return EXIT_OK
