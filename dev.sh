#!/usr/bin/env bash
# One entry point for everything a developer or CI does, on a fresh Debian machine, as root.
#   ./dev.sh demo      set up, start the local Slurm cluster, run the example array in the foreground
#   ./dev.sh test      set up, start the cluster, lint, type-check, run unit + end-to-end tests, then the
#                      e2e core set on Slurm 24.11 and 26.05 (chroot clusters, docker-cluster/chroot.sh)
#   ./dev.sh matrix [REL...]  only the release matrix: the e2e core set on 24.11 and 26.05 (or on REL...)
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
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check -e "${ROOT}[test]"
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
    local dir
    dir="$ROOT/demo-output/$(date +%Y%m%d-%H%M%S)"
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

# ---- ./dev.sh test: phases with their wall time ------------------------------------------------
CHROOT="$ROOT/docker-cluster/chroot.sh"
PHASES=()        # "name|seconds|ok/FAILED", printed at the end
FAILED_PHASES=()
phase() {  # phase NAME CMD...: run CMD, record its wall time and result, never exit
    local name=$1 t0=$SECONDS rc=0
    shift
    log "== $name"
    "$@" || rc=$?
    local secs=$((SECONDS - t0)) result=ok
    [ $rc = 0 ] || { result="FAILED (exit $rc)"; FAILED_PHASES+=("$name"); }
    PHASES+=("$name|$secs|$result")
    log "== $name: $result after $(fmt_secs $secs)"
    return 0
}
fmt_secs() { printf '%dm%02ds' $(($1 / 60)) $(($1 % 60)); }
print_phases() {
    local p name secs result
    log "phase times (wall):"
    for p in "${PHASES[@]}"; do
        IFS='|' read -r name secs result <<<"$p"
        printf '[dev]   %-44s %8s  %s\n' "$name" "$(fmt_secs "$secs")" "$result" >&2
    done
    printf '[dev]   %-44s %8s\n' "total" "$(fmt_secs $((SECONDS - TEST_T0)))" >&2
}

# The release matrix: the e2e core set (pytest -m core) against Slurm 24.11 and 26.05, each a
# real cluster in a chroot (docker-cluster/chroot.sh), after the host's 22.05 suite. Their slow
# part, debootstrap + apt (network and disk, little CPU), runs in the background from the start.
matrix_releases() {
    local all="24.11 26.05"
    if [ "${CI:-}" = true ]; then
        [ "${SLURM_ESCALATE_RELEASES-$all}" = "$all" ] || log "CI=true: SLURM_ESCALATE_RELEASES ignored, every release runs"
        echo "$all"
    else
        echo "${SLURM_ESCALATE_RELEASES-$all}"  # a developer may set it to "" (host only) or "24.11"
    fi
}

start_chroot_build() {  # start_chroot_build REL...: in the background, log in $BUILD_LOG
    [ $# -gt 0 ] || return 0
    # apt on the host only here, in the foreground: two apt-get at once fail on dpkg's lock
    command -v debootstrap >/dev/null || {
        log "installing debootstrap (for the chroot clusters)"
        DEBIAN_FRONTEND=noninteractive apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
    }
    BUILD_LOG=$(mktemp /tmp/slurm-escalate-chroot-build.XXXXXX.log)
    BUILD_T0=$SECONDS
    log "building the chroots of Slurm $* in the background (log: $BUILD_LOG)"
    (
        for rel in "$@"; do bash "$CHROOT" build "$rel" || exit 1; done
        echo "$((SECONDS - BUILD_T0))" > "$BUILD_LOG.seconds"
    ) </dev/null >"$BUILD_LOG" 2>&1 &
    BUILD_PID=$!
}

wait_chroot_build() {
    [ -n "${BUILD_PID:-}" ] || return 0
    local rc=0 t0=$SECONDS
    wait "$BUILD_PID" || rc=$?
    BUILD_PID=
    if [ $rc != 0 ]; then
        log "the chroot build failed (exit $rc); its log, $BUILD_LOG:"
        cat "$BUILD_LOG" >&2
        return 1
    fi
    log "chroot build took $(fmt_secs "$(cat "$BUILD_LOG.seconds")") in the background; waited $(fmt_secs $((SECONDS - t0))) for it"
    rm -f "$BUILD_LOG" "$BUILD_LOG.seconds"
}

# pytest's exit status 5 (no test selected) is fine when ./dev.sh test was given pytest
# arguments (-k ...) that leave a phase nothing to run
EXTRA_PYTEST_ARGS=0
selected_ok() {  # selected_ok CMD...
    local rc=0
    "$@" || rc=$?
    if [ $rc = 5 ] && [ "$EXTRA_PYTEST_ARGS" = 1 ]; then
        log "no test of this phase matches the pytest arguments given"
        return 0
    fi
    return $rc
}

chroot_pytest() {  # chroot_pytest REL PYTEST ARGS...
    local rel=$1
    shift
    # -p no:cacheprovider: the checkout (and its .pytest_cache) is the host's too
    selected_ok bash "$CHROOT" run "$rel" -- python -m pytest -p no:cacheprovider "$@"
}

core_on_release() {  # core_on_release REL [PYTEST ARGS...]: up, venv, core set, disruptive core set, down
    local rel=$1 rc=0
    shift
    MATRIX_UP=$rel
    bash "$CHROOT" up "$rel" || rc=1
    [ $rc = 0 ] && { bash "$CHROOT" venv "$rel" || rc=1; }
    if [ $rc = 0 ]; then
        chroot_pytest "$rel" -n 4 --durations=10 -m "core and not disruptive" "$@" tests/e2e || rc=1
        chroot_pytest "$rel" --durations=5 -m "core and disruptive" "$@" tests/e2e || rc=1
    fi
    bash "$CHROOT" down "$rel" || rc=1  # frees the 2 cores for the next release
    MATRIX_UP=
    return $rc
}

matrix_phases() {  # matrix_phases "REL..." [PYTEST ARGS...]: the build's end, then each release
    local rels rel
    read -r -a rels <<<"$1"
    shift
    phase "wait for the chroot build (${rels[*]})" wait_chroot_build
    [[ " ${FAILED_PHASES[*]} " != *" wait for the chroot build"* ]] || return 0
    for rel in "${rels[@]}"; do
        phase "$rel (chroot): e2e core set" core_on_release "$rel" "$@"
    done
}

on_test_exit() {
    if [ -n "${MATRIX_UP:-}" ]; then bash "$CHROOT" down "$MATRIX_UP" || true; fi
    if [ -n "${BUILD_PID:-}" ] && kill -0 "$BUILD_PID" 2>/dev/null; then
        log "the chroot build (pid $BUILD_PID) still runs in the background; log: $BUILD_LOG"
    fi
}

# What a user gets from `pip install` / `pipx install`: build the sdist and the wheel, check both
# (twine check, their contents), install the wheel into a fresh venv outside the checkout and run
# both commands from it, `--dry-run` against the local cluster included (it submits nothing).
# Every step returns 1 on failure: phase runs this in an `||` list, where `set -e` does not act.
packaging() {
    local tmp venv dist sdist wheel version out
    tmp=$(mktemp -d /tmp/slurm-escalate-packaging.XXXXXX)
    dist="$tmp/dist" venv="$tmp/venv"
    log "python -m build (sdist, then the wheel from it) into $dist"
    python -m build --outdir "$dist" "$ROOT" >"$tmp/build.log" 2>&1 \
        || { cat "$tmp/build.log" >&2; log "build failed; kept $tmp"; return 1; }
    sdist=$(ls "$dist"/*.tar.gz) && wheel=$(ls "$dist"/*.whl) || { log "no sdist or wheel in $dist"; return 1; }
    log "twine check --strict $(basename "$sdist") $(basename "$wheel")"
    twine --no-color check --strict "$sdist" "$wheel" || { log "twine check failed; kept $tmp"; return 1; }
    check_dist_contents "$sdist" "$wheel" || { log "kept $tmp"; return 1; }
    log "installing the wheel into a fresh venv ($venv)"
    python3 -m venv "$venv" || return 1
    "$venv/bin/python" -m pip install -q --disable-pip-version-check "$wheel" >"$tmp/pip.log" 2>&1 \
        || { cat "$tmp/pip.log" >&2; log "pip install of the wheel failed; kept $tmp"; return 1; }
    version=$(basename "$wheel" | cut -d- -f2)  # slurm_escalate-VERSION-py3-none-any.whl
    mkdir -p "$tmp/work" || return 1
    (
        cd "$tmp/work" || exit 1  # not the checkout: nothing can import its source
        # the checkout's .venv off PATH: only the fresh venv's commands (and Slurm's) are found
        PATH="$venv/bin:$(printf '%s' "$PATH" | tr ':' '\n' | grep -vxF "$VENV/bin" | paste -sd:)"
        export SLURM_ESCALATE_HOME="$tmp/state"
        where=$(python -c 'import slurm_escalate; print(slurm_escalate.__file__)') || exit 1
        case "$where" in "$venv"/*) ;; *) log "slurm_escalate imported from $where, not the fresh venv"; exit 1 ;; esac
        for prog in sbatch_escalate slurm-escalate; do
            [ "$(command -v "$prog")" = "$venv/bin/$prog" ] || { log "$prog is not the fresh venv's"; exit 1; }
            out=$("$prog" --version) || { log "$prog --version failed"; exit 1; }
            log "$prog --version: $out"
            [ "$out" = "$prog $version" ] || { log "expected '$prog $version'"; exit 1; }
        done
        log "sbatch_escalate --dry-run --config examples/ladder.yaml --array 0-11 examples/variable-job.sh"
        out=$(sbatch_escalate --dry-run --config "$ROOT/examples/ladder.yaml" --array 0-11 \
            "$ROOT/examples/variable-job.sh") || { log "the dry run failed"; exit 1; }
        printf '%s\n' "$out" | sed 's/^/[dev]   /' >&2
        grep -q '^sbatch --parsable .*--partition=devel' <<<"$out" \
            || { log "the dry run printed no sbatch command for the ladder's level 0 (devel)"; exit 1; }
        [ ! -e "$SLURM_ESCALATE_HOME" ] || { log "--dry-run created $SLURM_ESCALATE_HOME"; exit 1; }
    ) || { log "kept $tmp"; return 1; }
    rm -rf "$tmp"
}

check_dist_contents() {  # check_dist_contents SDIST WHEEL: what a user needs is in, tests are out
    python - "$ROOT" "$1" "$2" <<'PY'
import pathlib, sys, tarfile, zipfile
root, sdist, wheel = pathlib.Path(sys.argv[1]), sys.argv[2], sys.argv[3]
with tarfile.open(sdist) as t:
    names = t.getnames()
top = names[0].split("/")[0]
in_sdist = {n.split("/", 1)[1] for n in names if "/" in n}
with zipfile.ZipFile(wheel) as z:
    in_wheel = set(z.namelist())
package = {str(p.relative_to(root)) for p in (root / "slurm_escalate").rglob("*.py")}
need = {"README.md", "pyproject.toml", "PKG-INFO"} | package
need |= {p.name for p in root.glob("LICEN[CS]E*")} | {p.name for p in root.glob("COPYING*")}
manifest = root / "MANIFEST.in"
if manifest.exists() and "examples" in manifest.read_text():  # only if the sdist is told to
    need |= {str(p.relative_to(root)) for p in (root / "examples").iterdir()}
problems = [f"sdist lacks {n}" for n in sorted(need - in_sdist)]
problems += [f"wheel lacks {n}" for n in sorted(package - in_wheel)]
dist_info = next((n.split("/")[0] for n in in_wheel if ".dist-info/" in n), "")
problems += [f"wheel carries {n}" for n in sorted(in_wheel)
             if not n.startswith(("slurm_escalate/", dist_info + "/"))
             or n.split("/")[1] in ("tests", "conftest.py")]
entry_points = zipfile.ZipFile(wheel).read(f"{dist_info}/entry_points.txt").decode()
problems += [f"wheel has no console script {s}" for s in ("sbatch_escalate", "slurm-escalate")
             if f"\n{s} = " not in "\n" + entry_points]
for p in problems:
    print(f"[dev] {p}", file=sys.stderr)
if not problems:
    print(f"[dev] contents ok: sdist {top} ({len(in_sdist)} entries), wheel ({len(in_wheel)} "
          f"files): the {len(package)} package modules, no tests in the wheel", file=sys.stderr)
sys.exit(1 if problems else 0)
PY
}

install_chromium() {
    if ! dpkg-query -W -f='${Status}' chromium 2>/dev/null | grep -q "install ok installed"; then
        log "installing chromium from Debian (the report's HTML is checked in a headless browser)"
        DEBIAN_FRONTEND=noninteractive apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
    fi
}

run_tests() {
    TEST_T0=$SECONDS
    trap on_test_exit EXIT
    [ $# = 0 ] || EXTRA_PYTEST_ARGS=1
    local releases t0=$SECONDS
    read -r -a releases <<<"$(matrix_releases)"
    setup_python
    cluster_up
    install_chromium  # every apt-get on the host before the background build starts
    start_chroot_build "${releases[@]}"
    PHASES+=("setup: python, host cluster, chromium|$((SECONDS - t0))|ok")
    t0=$SECONDS
    log "ruff"
    ruff check slurm_escalate tests benchmarks
    log "mypy"
    mypy slurm_escalate
    log "import contract (import-linter): layers in the order of one poll's data flow"
    lint-imports --no-cache
    log "container files: hadolint (docker-cluster/Dockerfile), Compose schema (compose.yaml)"
    bash "$ROOT/docker-cluster/lint-container.sh"
    PHASES+=("lint: ruff, mypy, import-linter, container files|$((SECONDS - t0))|ok")
    phase "packaging: sdist, wheel, twine, fresh venv" packaging
    phase "22.05 (host): unit and e2e, in parallel" \
        selected_ok python -m pytest -n 8 --durations=15 -m "not disruptive" "$@" tests
    phase "22.05 (host): disruptive, one at a time" \
        selected_ok python -m pytest --durations=5 -m disruptive "$@" tests
    if [ ${#releases[@]} -gt 0 ]; then
        matrix_phases "${releases[*]}" "$@"
    else
        log "no release matrix (SLURM_ESCALATE_RELEASES is empty)"
    fi
    finish_tests
}

run_matrix() {  # ./dev.sh matrix [REL...] [-- PYTEST ARGS...]
    TEST_T0=$SECONDS
    trap on_test_exit EXIT
    local releases=()
    while [ $# -gt 0 ] && [ "$1" != -- ]; do
        case "$1" in 24.11 | 26.05) releases+=("$1") ;; *) log "unknown release $1 (24.11 or 26.05)"; exit 2 ;; esac
        shift
    done
    [ "${1:-}" = -- ] && shift
    [ $# = 0 ] || EXTRA_PYTEST_ARGS=1
    [ ${#releases[@]} -gt 0 ] || read -r -a releases <<<"$(matrix_releases)"
    [ ${#releases[@]} -gt 0 ] || { log "no release to run"; exit 2; }
    start_chroot_build "${releases[@]}"
    matrix_phases "${releases[*]}" "$@"
    finish_tests
}

finish_tests() {
    print_phases
    if [ ${#FAILED_PHASES[@]} -gt 0 ]; then
        log "FAILED: ${FAILED_PHASES[*]}"
        return 1
    fi
    log "all phases passed"
}

case "${1:-}" in
    demo) demo ;;
    test) shift; run_tests "$@" ;;
    matrix) shift; run_matrix "$@" ;;
    bench) shift; bench "$@" ;;
    setup) setup_python ;;
    cluster) shift; cluster_cmd up "$@" ;;
    down) shift; cluster_cmd down "$@" ;;
    *) sed -n '2,10p' "$0" >&2; exit 2 ;;
esac
