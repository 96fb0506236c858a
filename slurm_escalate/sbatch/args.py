"""What the user asked sbatch for, and the sbatch argv of each attempt.

``sbatch_escalate [OWN OPTIONS] [SBATCH OPTIONS...] SCRIPT [ARGS...]`` is read
like sbatch 22.05 reads it (getopt_long with "+": the first non-option is the
script, everything after it belongs to the script, ``--`` ends the options).
Long options may be abbreviated to any unambiguous prefix, as sbatch allows
(``--part=day``); an ambiguous one (``--mem-p``) is a UsageError listing the
candidates. Resubmissions reuse the user's own tokens byte for byte and only
replace the resources a ladder level sets (see ``build_sbatch_args``).

Facts checked with the real ``sbatch --test-only`` (slurm-wlm 22.05.8):

* ``--mem`` on the command line with ``#SBATCH --mem-per-cpu`` (or
  ``--mem-per-gpu``) in the script is fatal: "--mem, --mem-per-cpu, and
  --mem-per-gpu are mutually exclusive"; ``--mem-per-cpu=0`` does not undo it.
  ``resolve_directive_conflicts`` removes such directives from the copy of the
  script that is submitted. A user whose own command mixes them gets a
  UsageError up front (sbatch would refuse it too).
* ``--time-min`` above the job's ``--time`` is refused ("Invalid time-min
  specification"), so a level that lowers ``--time`` below the user's
  ``--time-min`` also passes ``--time-min=<that time>``.
* #SBATCH lines: ``#SBATCH`` at column 0 before the first line holding a
  non-blank, non-``#`` character; unquoted ``#`` starts a comment; ``"`` and
  ``'`` quote, ``\\`` escapes the next character but cannot glue words
  (``a\\ b`` is two words); an empty word ends the line; all lines form one
  argv, so an option's value may sit on the next line; a stray word is fatal.
* ``#PBS`` / ``#BSUB`` lines are honoured by sbatch unless ``--ignore-pbs``;
  they are not interpreted here, so they are refused (ScriptError) instead.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field

from slurm_escalate.arrays.spec import ArraySpec, parse_array_spec
from slurm_escalate.core.models import Level
from slurm_escalate.core.units import format_mem, format_time, parse_mem_mb, parse_time_s
from slurm_escalate.errors import ScriptError, UsageError
from slurm_escalate.sbatch.options import (
    LONG_NAMES,
    OPTIONS,
    REFUSED,
    SPACE,
    OptionSyntaxError,
    Parsed,
    SbatchOption,
    Word,
    as_typed,
    directive_words,
    getopt,
)

#: sbatch refuses any two of these together (from any mix of command line and script)
MEM_OPTIONS = frozenset({"mem", "mem-per-cpu", "mem-per-gpu"})


@dataclass(frozen=True)
class JobRequest:
    """Everything the user asked for. ``script_text`` is the text that was parsed."""

    sbatch_args: tuple[str, ...]
    options: tuple[SbatchOption, ...]
    script: str | None  # as typed; None with --wrap
    script_args: tuple[str, ...] = ()
    directives: tuple[SbatchOption, ...] = ()
    script_text: str | None = field(default=None, repr=False)


# ---------------------------------------------------------------- command line


def split_command_line(
    tokens: Sequence[str],
) -> tuple[tuple[str, ...], str | None, tuple[str, ...]]:
    """Split into (sbatch option tokens, script or None with --wrap, script args)."""
    tokens = tuple(tokens)
    try:
        items, opt_end, rest = getopt(tokens)
    except OptionSyntaxError as exc:
        raise UsageError(str(exc)) from None
    for item in items:
        if item.option.name in REFUSED:
            reason = REFUSED[item.option.name]
            raise UsageError(f"sbatch option '{as_typed(item.option)}' is not supported: {reason}")
    wrap = any(item.option.name == "wrap" for item in items)
    script = tokens[rest] if rest < len(tokens) else None
    if script == ":" and rest == opt_end:
        raise UsageError("heterogeneous jobs (the ':' separator) are not supported")
    if wrap and script is not None:
        raise UsageError(f"unexpected argument '{script}': --wrap replaces the job script")
    if not wrap and script is None:
        raise UsageError("no job script given")
    return tokens[:opt_end], script, tokens[rest + 1 :]


def parse_sbatch_options(tokens: Sequence[str]) -> tuple[SbatchOption, ...]:
    """Parse sbatch option tokens (the first element of ``split_command_line``)."""
    tokens = tuple(tokens)
    try:
        items, _, rest = getopt(tokens)
    except OptionSyntaxError as exc:
        raise UsageError(str(exc)) from None
    if rest < len(tokens):
        raise UsageError(f"unexpected argument '{tokens[rest]}' among sbatch options")
    return tuple(item.option for item in items)


# ---------------------------------------------------------------- #SBATCH lines


def _parse_directives(script_text: str) -> tuple[list[Parsed], list[Word], int | None]:
    words, foreign = directive_words(script_text)
    texts = [w.text for w in words]
    try:
        items, _, rest = getopt(texts)
    except OptionSyntaxError as exc:
        raise ScriptError(f"line {words[exc.index].line}: {exc}") from None
    if rest < len(words):
        raise ScriptError(f"line {words[rest].line}: invalid #SBATCH directive '{texts[rest]}'")
    lined = [item._replace(option=_at_line(item.option, words[item.first].line)) for item in items]
    for item in lined:
        if item.option.name in REFUSED:
            raise ScriptError(
                f"line {item.option.line}: '#SBATCH {as_typed(item.option)}' "
                f"is not supported: {REFUSED[item.option.name]}"
            )
    return lined, words, foreign


def _at_line(option: SbatchOption, line: int) -> SbatchOption:
    return SbatchOption(option.name, option.value, option.tokens, line)


def read_directives(script_text: str) -> tuple[SbatchOption, ...]:
    """The #SBATCH options of a script, in order, each with its line number."""
    return tuple(item.option for item in _parse_directives(script_text)[0])


def remove_directives(script_text: str, names: Collection[str]) -> str:
    """The script with the #SBATCH options called ``names`` cut out; other bytes untouched."""
    items, words, _ = _parse_directives(script_text)
    spans = sorted(
        (words[k].start, words[k].end)
        for item in items
        if item.option.name in names
        for k in range(item.first, item.end)
    )
    for start, end in reversed(spans):
        script_text = script_text[:start] + script_text[end:]
    return script_text


def resolve_directive_conflicts(script_text: str, args: Sequence[str]) -> str:
    """Script text sbatch accepts together with ``args`` (a ``build_sbatch_args`` result).

    A memory option in ``args`` cannot coexist with a different one in the
    script, so those directives are removed. Returns ``script_text`` itself
    when nothing clashes.
    """
    options = parse_sbatch_options(split_command_line(args)[0])
    on_command_line = {o.name for o in options} & MEM_OPTIONS
    clashing = MEM_OPTIONS - on_command_line if on_command_line else set()
    if not any(o.name in clashing for o in read_directives(script_text)):
        return script_text
    return remove_directives(script_text, clashing)


# ---------------------------------------------------------------- the request


def make_request(tokens: Sequence[str], script_text: str | None) -> JobRequest:
    """Build a JobRequest; ``script_text`` is the script's text (None with --wrap)."""
    sbatch_args, script, script_args = split_command_line(tokens)
    if (script is None) != (script_text is None):
        raise ValueError("script_text must be given exactly when the command names a script")
    options = parse_sbatch_options(sbatch_args)
    directives: tuple[SbatchOption, ...] = ()
    if script_text is not None:
        items, _, foreign = _parse_directives(script_text)
        directives = tuple(item.option for item in items)
        ignore_pbs = any(o.name == "ignore-pbs" for o in options + directives)
        if foreign and not ignore_pbs:
            raise ScriptError(
                f"line {foreign}: #PBS/#BSUB directives are not supported; "
                "rewrite them as #SBATCH lines or pass --ignore-pbs"
            )
    request = JobRequest(sbatch_args, options, script, script_args, directives, script_text)
    _check_memory_options(request)
    return request


def _check_memory_options(request: JobRequest) -> None:
    cli = [o for o in request.options if o.name in MEM_OPTIONS]
    script = [o for o in request.directives if o.name in MEM_OPTIONS]
    for other in cli[1:]:
        if other.name != cli[0].name:
            raise UsageError(f"{as_typed(cli[0])} and {as_typed(other)} are mutually exclusive")
    for other in script[1:]:
        if other.name != script[0].name:
            raise ScriptError(
                f"line {other.line}: #SBATCH {as_typed(other)} conflicts with "
                f"{as_typed(script[0])} on line {script[0].line}"
            )
    if cli and script and cli[0].name != script[0].name:
        raise UsageError(
            f"{as_typed(cli[0])} conflicts with '#SBATCH {as_typed(script[0])}' "
            f"on line {script[0].line} of the script (sbatch refuses both)"
        )


def _canonical(name: str) -> str:
    if name not in LONG_NAMES:
        raise ValueError(f"not an sbatch option name: {name!r}")
    return LONG_NAMES[name]


def _last(request: JobRequest, name: str) -> SbatchOption | None:
    name = _canonical(name)
    for options in (request.options, request.directives):
        found = [o for o in options if o.name == name]
        if found:
            return found[-1]
    return None


def effective(request: JobRequest, name: str) -> str | None:
    """The value sbatch will use: last on the command line, else last #SBATCH, else None."""
    option = _last(request, name)
    return None if option is None else option.value


def given_on_command_line(request: JobRequest, name: str) -> bool:
    name = _canonical(name)
    return any(o.name == name for o in request.options)


def array_spec(request: JobRequest) -> ArraySpec | None:
    """The ``--array`` the user asked for (command line or #SBATCH); ArraySpecError if bad."""
    text = effective(request, "array")
    return None if text is None else parse_array_spec(text)


def requested_level(request: JobRequest) -> Level:
    """The resources the user asked for, as a Level (None where nothing was asked).

    ``mem_mb`` comes from ``--mem`` only: memory asked per CPU or GPU gives
    None. ``--mem=0`` (all of a node's memory) and ``--time`` of 0, -1,
    UNLIMITED or INFINITE (no limit) also give None.
    """
    cpus = _number(request, "cpus-per-task", _positive_int, ())
    return Level(
        partition=effective(request, "partition"),
        mem_mb=_number(request, "mem", parse_mem_mb, ("0", "0K", "0M", "0G", "0T")),
        time_s=_number(request, "time", parse_time_s, ("0", "-1", "UNLIMITED", "INFINITE")),
        cpus_per_task=cpus,
        gres=effective(request, "gres"),
        qos=effective(request, "qos"),
        account=effective(request, "account"),
        constraint=effective(request, "constraint"),
    )


def _positive_int(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise ValueError(f"not a positive integer: {text!r}")
    return int(text)


def _number(
    request: JobRequest, name: str, parse: Callable[[str], int], unlimited: tuple[str, ...]
) -> int | None:
    option = _last(request, name)
    if option is None or option.value is None or option.value.upper() in unlimited:
        return None
    try:
        return parse(option.value)
    except ValueError as exc:
        where = "" if option.line is None else f"line {option.line}: "
        raise UsageError(f"{where}invalid {as_typed(option)}: {exc}") from None


# ---------------------------------------------------------------- building argv


def _level_args(level: Level) -> list[tuple[frozenset[str], str]]:
    """(option names a level key replaces, the argument that replaces them)."""
    out: list[tuple[frozenset[str], str]] = []
    if level.partition is not None:
        out.append((frozenset({"partition"}), f"--partition={level.partition}"))
    if level.mem_mb is not None:
        out.append((MEM_OPTIONS, f"--mem={format_mem(level.mem_mb)}"))
    if level.time_s is not None:
        out.append((frozenset({"time"}), f"--time={format_time(level.time_s)}"))
    if level.cpus_per_task is not None:
        out.append((frozenset({"cpus-per-task"}), f"--cpus-per-task={level.cpus_per_task}"))
    for key in ("gres", "qos", "account", "constraint"):
        value = getattr(level, key)
        if value is not None:
            out.append((frozenset({key}), f"--{key}={value}"))
    return out


def build_sbatch_args(
    request: JobRequest,
    level: Level | None,
    *,
    array: str | None,
    keep_user_resources: bool,
    open_mode_append: bool,
    script_path: str | None = None,
    overrides: Sequence[tuple[str, str]] = (),
) -> list[str]:
    """The argv after ``sbatch`` (the client adds ``--parsable``) for one attempt.

    The user's tokens are kept byte for byte except those a level key, ``array``
    or ``open_mode_append`` replaces (and ``--parsable``). With
    ``keep_user_resources`` a key the user gave on the command line is kept and
    the level's value dropped; #SBATCH values always lose to the level. Then
    come the level's arguments, a ``--time-min`` clamp when needed, the level's
    ``extra_args``, ``overrides`` ((option name, value) pairs that replace the
    user's option of that name), and the script (``script_path`` if given)
    with its args.
    Submit ``resolve_directive_conflicts(request.script_text, args)`` as the script.
    """
    if request.script is None and script_path is not None:
        raise ValueError("script_path given for a --wrap request")
    drop = {"parsable"}
    added: list[str] = []
    if array is not None:
        drop.add("array")
        added.append(f"--array={array}")
    for names, arg in _level_args(level) if level is not None else ():
        if keep_user_resources and any(o.name in names for o in request.options):
            continue
        drop |= names
        added.append(arg)
    if level and level.time_s is not None and "time" in drop:
        time_min = effective(request, "time-min")
        try:
            too_long = time_min is not None and parse_time_s(time_min) > level.time_s
        except ValueError:
            too_long = False  # sbatch will complain about it itself
        if too_long:
            drop.add("time-min")
            added.append(f"--time-min={format_time(level.time_s)}")
    if open_mode_append:
        drop.add("open-mode")
        added.append("--open-mode=append")
    if level:
        added.extend(level.extra_args)
    for name, value in overrides:
        drop.add(name)
        added.append(f"--{name}={value}")
    argv = _without(request.sbatch_args, drop) + added
    if request.script is not None:
        path = request.script if script_path is None else script_path
        if path.startswith("-"):
            argv.append("--")
        argv.append(path)
        argv.extend(request.script_args)
    return argv


def _without(tokens: Sequence[str], drop: Collection[str]) -> list[str]:
    """``tokens`` minus the options named in ``drop``; clusters like ``-Hc2`` are split."""
    items, _, _ = getopt(tokens)
    out: list[str] = []
    for first in sorted({item.first for item in items}):
        group = [item for item in items if item.first == first]
        kept = [item.option for item in group if item.option.name not in drop]
        if len(kept) == len(group):
            out.extend(tokens[first : group[-1].end])
            continue
        # A short cluster losing a letter: only its last letter can take a value,
        # and every droppable option does, so the letters kept are plain flags.
        out.extend(f"-{OPTIONS[option.name][1]}" for option in kept)
    return out


# ---------------------------------------------------------------- the file system


def resolve_script(
    path: str, cwd: str, *, chdir: str | None = None, path_env: str | None = None
) -> str:
    """Find the script like sbatch 22.05: ``/abs``; ``./rel`` from ``cwd``; any
    other name in ``--chdir``, then ``cwd``, then each ``PATH`` directory."""
    if not path:
        raise ScriptError("job script path is empty")
    if path.startswith(("/", ".")):
        candidates = [os.path.join(cwd, path)]
    else:
        dirs = ([chdir] if chdir else []) + ["."] + [d for d in (path_env or "").split(":") if d]
        candidates = [os.path.join(cwd, d, path) for d in dirs]
    for candidate in candidates:
        if os.path.isfile(candidate):
            return os.path.normpath(candidate)
    if any(os.path.isdir(c) for c in candidates):
        raise ScriptError(f"job script '{path}' is a directory")
    raise ScriptError(f"job script '{path}' not found")


def load_script(
    path: str, cwd: str, *, chdir: str | None = None, path_env: str | None = None
) -> str:
    """The text of a job script sbatch would accept, or a one-line ScriptError."""
    try:
        with open(resolve_script(path, cwd, chdir=chdir, path_env=path_env), "rb") as handle:
            data = handle.read()
    except OSError as exc:
        raise ScriptError(f"cannot read job script '{path}': {exc.strerror}") from None
    if not data.strip(SPACE.encode()):
        raise ScriptError(f"job script '{path}' is empty")
    if b"\0" in data:
        raise ScriptError(f"job script '{path}' contains NUL bytes (binary file?)")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ScriptError(f"job script '{path}' is not UTF-8 text (byte {exc.start})") from None
    if not text.startswith("#!"):
        raise ScriptError(
            f"job script '{path}' does not look like a batch script: "
            "the first line must start with #! (e.g. #!/bin/bash)"
        )
    if "\r\n" in text:
        raise ScriptError(f"job script '{path}' has DOS line breaks (\\r\\n); run dos2unix")
    return text


def load_request(tokens: Sequence[str], cwd: str, *, path_env: str | None = None) -> JobRequest:
    """``make_request`` with the script read from disk (``--chdir`` is honoured)."""
    sbatch_args, script, _ = split_command_line(tokens)
    chdirs = [o.value for o in parse_sbatch_options(sbatch_args) if o.name == "chdir"]
    text = None
    if script is not None:
        chdir = chdirs[-1] if chdirs else None
        text = load_script(script, cwd, chdir=chdir, path_env=path_env)
    return make_request(tokens, text)
