"""Shell completion (click's): what each word of a command line may be completed to.

Click prints the shell's script (``_SBATCH_ESCALATE_COMPLETE=bash_source sbatch_escalate``,
``_SLURM_ESCALATE_COMPLETE=zsh_source slurm-escalate``, ...) and answers each TAB. Besides
click's own (subcommands, option names), this module supplies:

- chain ids for a CHAIN argument, from the state directory (no Slurm call);
- file names for FILE options (``--config``, ``-o``, ``--db``, ``--script``), directories
  for ``--workdir``;
- for ``sbatch_escalate`` (and ``slurm-escalate submit``), which reads like sbatch: this
  tool's options only in the leading run where they are this tool's; after that sbatch's
  long options while sbatch options go on; nothing for the value of an sbatch option
  (file names for the few that take a path); file names for the script and its arguments.
"""

from __future__ import annotations

import click
from click.shell_completion import CompletionItem

from slurm_escalate.errors import EscalateError
from slurm_escalate.sbatch import options as sbatch_options
from slurm_escalate.service.env import Env

#: sbatch options whose value is a path: complete file (or directory) names there
_SBATCH_PATH_VALUES = {"output": "file", "error": "file", "input": "file", "chdir": "dir"}


def files(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[CompletionItem]:
    """The shell completes file names."""
    return [CompletionItem(incomplete, type="file")]


def dirs(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[CompletionItem]:
    """The shell completes directory names."""
    return [CompletionItem(incomplete, type="dir")]


def chains(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[CompletionItem]:
    """Chain ids under the state directory that start with ``incomplete``, newest first."""
    env = ctx.find_object(Env) or Env()
    try:
        ids = env.store.chain_ids()
    except (EscalateError, OSError):
        return []  # no state directory can be named or read: nothing to offer
    return [CompletionItem(c) for c in reversed(ids) if c.startswith(incomplete)]


def sbatch_long_options(incomplete: str, exclude: set[str]) -> list[CompletionItem]:
    """sbatch's long options starting with ``incomplete``, but those it refuses to run
    under a monitor (--wait, --test-only, ...) and the names in ``exclude``."""
    names = sorted(set(sbatch_options.OPTIONS) - set(sbatch_options.REFUSED))
    return [
        CompletionItem(f"--{name}", help="sbatch")
        for name in names
        if f"--{name}".startswith(incomplete) and f"--{name}" not in exclude
    ]


def rejoin_equals(words: list[str]) -> list[str]:
    """The words as typed: bash splits ``--mem=2G`` into ``--mem``, ``=``, ``2G`` (``=`` is
    in COMP_WORDBREAKS); zsh and fish do not. A trailing ``--mem =`` stays ``--mem``: its
    value is the word being completed."""
    out: list[str] = []
    i = 0
    while i < len(words):
        if words[i] == "=" and out and out[-1].startswith("-"):
            if i + 1 < len(words):
                out[-1] += "=" + words[i + 1]
            i += 2
            continue
        out.append(words[i])
        i += 1
    return out


def _sbatch_position(words: tuple[str, ...]) -> str:
    """Where the next word of ``words`` (sbatch's part of the line) stands:
    ``"option"`` (another sbatch option or the script), ``"script"`` (after the script:
    its arguments), ``"value:NAME"`` (the value of sbatch's --NAME) or ``"bad"``."""
    try:
        _, _, rest = sbatch_options.getopt(words)
    except sbatch_options.OptionSyntaxError as e:
        if e.index == len(words) - 1 and "needs a value" in str(e):
            token = words[-1]
            name = (
                sbatch_options.SHORT.get(token[-1], "")
                if not token.startswith("--")
                else sbatch_options.LONG_NAMES.get(token[2:], "")
            )
            return f"value:{name}"
        return "bad"
    return "script" if rest < len(words) else "option"


def sbatch_words(
    ctx: click.Context, param: click.Parameter, incomplete: str
) -> list[CompletionItem]:
    """A word that is not an option name, after this tool's options: an sbatch option's
    value, the script or one of its arguments."""
    if incomplete.startswith("-"):  # after a "--" the user typed: sbatch's options
        return submit_option_names(ctx, incomplete, [], param.name or "")
    position = _sbatch_position(tuple(ctx.params.get(param.name or "") or ()))
    if position.startswith("value:"):
        kind = _SBATCH_PATH_VALUES.get(position.removeprefix("value:"))
        return [CompletionItem(incomplete, type=kind)] if kind else []
    return files(ctx, param, incomplete)


def submit_option_names(
    ctx: click.Context, incomplete: str, own: list[CompletionItem], param_name: str
) -> list[CompletionItem]:
    """Option names for a word starting with ``-`` on a submit line. ``own``: click's
    completion of this tool's options, which are this tool's only before the first
    sbatch word (``own_options_first``)."""
    sbatch_part: tuple[str, ...] = tuple(ctx.params.get(param_name) or ())
    if not sbatch_part:  # still in the leading run: ours, and sbatch's that are not ours
        if not incomplete.startswith("--"):
            return own
        ours = {opt for p in ctx.command.params for opt in (*p.opts, *p.secondary_opts)}
        return [*own, *sbatch_long_options(incomplete, ours)]
    if _sbatch_position(sbatch_part) == "option" and incomplete.startswith("--"):
        return sbatch_long_options(incomplete, set())
    return []  # a script's argument, or an sbatch option's value: nothing to guess
