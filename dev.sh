#!/usr/bin/env bash
# One entry point for everything a developer or CI does, on a fresh Debian machine, as root.
#   ./dev.sh demo      set up, start the local Slurm cluster, run the example array in the foreground
#   ./dev.sh test      set up, start the cluster, lint, type-check, run unit + end-to-end tests
#   ./dev.sh bench     set up, start the cluster, run every benchmark (results in benchmarks/results/)
#   ./dev.sh setup     only install Python dependencies into .venv
#   ./dev.sh cluster   only bring the local cluster up (docker-cluster/cluster.sh up); --slurm 24.11|26.05: a chroot one
#   ./dev.sh down      stop the local cluster; --slurm 24.11|26.05: stop that chroot cluster (docker-cluster/chroot.sh)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
ROOT="$PWD"
VENV="$ROOT/.venv"

log() { printf '[dev] %s\n' "$*" >&2; }

setup_python() {
    if ! command -v python3 >/dev/null || ! python3 -c 'import venv, ensurepip' 2>/dev/null; then
        log "installing python3 and venv from Debian"
        DEBIAN_FRONTEND=noninteractive apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3 python3-venv python3-pip >/dev/null
    fi
    python3 -c 'import sys; sys.exit(sys.version_info < (3, 10))' \
        || { log "Python 3.10 or newer is needed"; exit 1; }
    [ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check -e "$ROOT[test]"
    export PATH="$VENV/bin:$PATH"
}

cluster_up() { bash "$ROOT/docker-cluster/cluster.sh" up; }

# ./dev.sh cluster|down --slurm REL: a cluster of another Slurm release in a chroot (docker-cluster/chroot.sh)
cluster_cmd() {  # cluster_cmd up|down [--slurm REL]
    local action=$1; shift
    case "${1:-}" in
        "") if [ "$action" = up ]; then cluster_up; else bash "$ROOT/docker-cluster/cluster.sh" down; fi ;;
        --slurm) [ -n "${2:-}" ] || { log "--slurm needs a release: 24.11 or 26.05"; exit 2; }
            bash "$ROOT/docker-cluster/chroot.sh" "$action" "$2" ;;
        *) log "unknown option $1 (--slurm 24.11|26.05)"; exit 2 ;;
    esac
}

demo() {
    setup_python
    cluster_up
    local dir="$ROOT/demo-output/$(date +%Y%m%d-%H%M%S)"
    mkdir -p "$dir"
    log "running the example array in $dir (task logs land there)"
    cd "$dir"
    export SLURM_ESCALATE_HOME="${SLURM_ESCALATE_HOME:-$ROOT/demo-output/state}"
    set +e
    sbatch_escalate --config "$ROOT/examples/ladder.yaml" --min-poll 2 \
        --array 0-11 "$ROOT/examples/variable-job.sh"
    local rc=$?
    set -e
    log "sbatch_escalate exited $rc (1 means: some tasks have real bugs, listed above)"
    return $rc
}

bench() {
    setup_python
    cluster_up
    log "benchmarks (about 20 minutes; --quick for a smoke run); results in benchmarks/results/"
    python "$ROOT/benchmarks/run.py" "$@"
}

run_tests() {
    setup_python
    cluster_up
    log "ruff"
    ruff check slurm_escalate tests benchmarks
    log "mypy"
    mypy slurm_escalate
    log "import contract (import-linter): layers in the order of one poll's data flow"
    lint-imports --no-cache
    if ! dpkg-query -W -f='${Status}' chromium 2>/dev/null | grep -q "install ok installed"; then
        log "installing chromium from Debian (the report's HTML is checked in a headless browser)"
        DEBIAN_FRONTEND=noninteractive apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
    fi
    log "pytest: unit and end-to-end tests, in parallel"
    python -m pytest -n 8 --durations=15 -m "not disruptive" "$@" tests
    log "pytest: tests that stop Slurm daemons, one at a time"
    python -m pytest --durations=5 -m disruptive "$@" tests
}

case "${1:-}" in
    demo) demo ;;
    test) shift; run_tests "$@" ;;
    bench) shift; bench "$@" ;;
    setup) setup_python ;;
    cluster) shift; cluster_cmd up "$@" ;;
    down) shift; cluster_cmd down "$@" ;;
    *) sed -n '2,8p' "$0" >&2; exit 2 ;;
esac
