"""The ladder file: read and parse its YAML, then hand the mapping to the pure core.

PyYAML is configured here, not in the core: scalars like ``1:30:00`` stay
strings (YAML 1.1 would read them as base-60 integers) and a duplicate key is
an error (PyYAML would keep the last one and hide a typo'd level).
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from slurm_escalate.core.ladder import policy_from_mapping
from slurm_escalate.core.models import Policy
from slurm_escalate.errors import ConfigError


def _error(src: str, where: str, msg: str) -> ConfigError:
    return ConfigError(f"{src}: {where}: {msg}" if where else f"{src}: {msg}")


class _Loader(yaml.SafeLoader):
    """SafeLoader that keeps h:m:s scalars as strings and rejects duplicate keys."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        # PyYAML keeps the last of two equal keys; in a ladder that hides a typo'd level.
        seen: set[str] = set()
        for key_node, _ in node.value:
            if isinstance(key_node, yaml.ScalarNode) and key_node.tag != "tag:yaml.org,2002:merge":
                if key_node.value in seen:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"duplicate key {key_node.value!r}", key_node.start_mark
                    )
                seen.add(key_node.value)
        return super().construct_mapping(node, deep=deep)


_SEXAGESIMAL = re.compile(r"^[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?$")
# Resolvers are tried in order, so putting the str resolver first wins over base-60 int/float.
_Loader.yaml_implicit_resolvers = {
    first: (
        [("tag:yaml.org,2002:str", _SEXAGESIMAL)]
        if isinstance(first, str) and first in "+-0123456789"
        else []
    )
    + list(resolvers)
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def load_policy(path: str | Path, shown_as: str | None = None) -> Policy:
    """Read and validate a ladder file; ``shown_as`` (default: the path) names it in messages."""
    src = shown_as or str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise _error(src, "", "no such file") from None
    except UnicodeDecodeError:
        raise _error(src, "", "not UTF-8 text") from None
    except OSError as e:  # a directory, no permission, an I/O error
        raise _error(src, "", f"cannot read: {(e.strerror or str(e)).lower()}") from None
    try:
        data = yaml.load(text, Loader=_Loader)  # _Loader is a SafeLoader
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        problem = ", ".join(t for t in (e.context, e.problem) if t) or "syntax error"
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise _error(src, where, f"invalid YAML: {problem}") from None
    except yaml.YAMLError as e:
        raise _error(src, "", f"invalid YAML: {e}") from None
    return policy_from_mapping(data, src)
