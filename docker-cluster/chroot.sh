#!/usr/bin/env bash
# A real multi-node Slurm cluster of another Slurm release, in a debootstrap chroot, as root,
# beside the host's cluster (docker-cluster/cluster.sh, Debian 12's Slurm 22.05).
#   docker-cluster/chroot.sh up REL          debootstrap + install if missing, start everything, wait for idle nodes
#   docker-cluster/chroot.sh build REL       only debootstrap + install (no config, no daemon): the slow, network-bound part
#   docker-cluster/chroot.sh start REL       start whichever of slurmdbd/slurmctld/slurmd is not running; also works
#                                            from INSIDE the chroot (a test that stopped slurmdbd restarts it so)
#   docker-cluster/chroot.sh down REL        stop that release's daemons, unmount; the host cluster is not touched
#   docker-cluster/chroot.sh status REL      mounts, daemons, sinfo
#   docker-cluster/chroot.sh venv REL        <checkout>/.venv-REL inside the chroot, pip install -e '.[test]'
#   docker-cluster/chroot.sh run REL -- CMD  run CMD inside the chroot (cwd kept when it is under the checkout
#                                            or the chroot, else the checkout; .venv-REL on PATH when it exists)
# REL is 24.11 (Debian trixie) or 26.05 (Debian sid). Idempotent: "up" on a running cluster only checks it.
# Client and server must be the same release: run sbatch/sacct and the tool's tests through "run",
# which sets SLURM_ESCALATE_CHROOT_RELEASE=REL and SLURM_ESCALATE_TEST_DAEMON_PREFIX=TAG- (a24-, a26-).
# See docker-cluster/chroot/README.md.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CHECKOUT="$(cd "$HERE/.." && pwd)"           # the project checkout, bind-mounted at the same path
BASE="${SLURM_ESCALATE_CHROOT_BASE:-/var/lib/slurm-escalate-chroot}"
HOST="$(hostname)"
IN_STATE=/var/lib/slurm-escalate-cluster        # paths inside the chroot
IN_LOG=/var/log/slurm-escalate-cluster
IN_CA=/usr/local/share/slurm-escalate/host-ca.crt
IN_LIBMARIADB=/opt/bookworm-libmariadb3
IN_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
PACKAGES=(slurm-wlm slurmdbd slurm-client munge mariadb-server python3 python3-venv procps)
NODE_SUFFIXES=(d1 d2 n1 n2 w1 w2)
# Run from inside a chroot made here (through "run"): the chroot's / carries the debootstrap stamp.
INSIDE=0
[ -e /.slurm-escalate-debootstrap ] && INSIDE=1

log() { printf '[chroot %s] %s\n' "${REL:-}" "$*" >&2; }
die() { printf '[chroot %s] ERROR: %s\n' "${REL:-}" "$*" >&2; exit 1; }

# Everything that must differ from the host cluster (16817/16819/17001-17022, node d1.., "escalate",
# MariaDB 3306) and between releases.
select_release() {
    REL="$1"
    case "$REL" in
        24.11) SUITE=trixie TAG=a24 P=18 ;;
        26.05) SUITE=sid TAG=a26 P=19 ;;
        *) die "unknown release '$REL' (24.11 or 26.05)" ;;
    esac
    CH="$BASE/$REL"
    if [ "$INSIDE" = 1 ]; then
        # inside, the chroot is /: only this chroot's own release can be driven from here
        [ "$(cat /.slurm-escalate-release 2>/dev/null)" = "$REL" ] \
            || die "this is the chroot of $(cat /.slurm-escalate-release 2>/dev/null || echo another release), not $REL"
        CH=""
    fi
    # A second chroot of one release beside the usual one (a from-scratch check in another
    # SLURM_ESCALATE_CHROOT_BASE while the usual one runs) needs other names and ports:
    # SLURM_ESCALATE_CHROOT_ALT=1 gives b24-/b26- names and ports 24xxx/25xxx. A chroot
    # remembers its names in /.slurm-escalate-names, so later commands need not repeat it.
    local saved
    saved=$(cat "$CH/.slurm-escalate-names" 2>/dev/null || true)
    if [ "${SLURM_ESCALATE_CHROOT_ALT:-}" = 1 ]; then
        TAG="b${TAG#a}" P=$((P + 6))  # 20xxx-21xxx: cluster.sh's "site" cluster (20817, 20001-20003)
        [ -z "$saved" ] || [ "$saved" = "$TAG $P" ] || die "$CH was made with the names/ports '$saved', not '$TAG $P'"
    elif [ -n "$saved" ]; then
        read -r TAG P <<<"$saved"
    fi
    CLUSTER="escalate${REL/./}"
    CTLD_PORT=${P}817 SLURMD_PORT=${P}818 DBD_PORT=${P}819 MARIADB_PORT=${P}306
    NODES=() NODE_PORTS=()
    local s i=0
    for s in "${NODE_SUFFIXES[@]}"; do
        NODES+=("$TAG$s")
        NODE_PORTS+=("$P$(printf '%03d' $(( (i / 2) * 10 + i % 2 + 1 )))")  # P001 P002 P011 P012 P021 P022
        i=$((i + 1))
    done
    VENV="$CHECKOUT/.venv-$REL"
}

# Run in the chroot with a clean environment. fd 9 (the lock) is not inherited by daemons.
in_chroot() {
    if [ "$INSIDE" = 1 ]; then
        /usr/bin/env -i PATH="$IN_PATH" HOME=/root LANG=C.UTF-8 "$@" 9>&-
    else
        chroot "$CH" /usr/bin/env -i PATH="$IN_PATH" HOME=/root LANG=C.UTF-8 "$@" 9>&-
    fi
}

# ---- processes of this chroot: those whose root directory is $CH (never the host's) ----------
chroot_pids() {
    local p r
    for p in /proc/[0-9]*; do
        r=$(readlink "$p/root" 2>/dev/null) || continue
        [ "$r" = "$CH" ] && echo "${p#/proc/}"
    done
    return 0
}
pids_named() {  # pids_named COMM: this chroot's processes whose command name is COMM
    local p pids
    # Inside a chroot every process's root reads "/", the host's too: there only the command
    # names tell, and they are this release's own (a24-slurmdbd...), used by no other cluster.
    if [ "$INSIDE" = 1 ]; then pids=$(cd /proc && ls -d [0-9]*); else pids=$(chroot_pids); fi
    for p in $pids; do
        [ "$(cat "/proc/$p/comm" 2>/dev/null)" = "$1" ] && echo "$p"
    done
    return 0
}
running() { [ -n "$(pids_named "$1")" ]; }
slurmd_running() {  # slurmd_running NODE
    local p
    for p in $(pids_named "$TAG-slurmd"); do
        tr '\0' ' ' < "/proc/$p/cmdline" 2>/dev/null | grep -q -- "-N $1 \?$" && return 0
    done
    return 1
}

wait_for() {  # wait_for SECONDS DESCRIPTION CMD...
    local secs=$1 what=$2; shift 2
    local i
    for ((i = 0; i < secs * 2; i++)); do
        if "$@" >/dev/null 2>&1; then return 0; fi
        sleep 0.5
    done
    die "timed out after ${secs}s waiting for $what"
}

# ---- the chroot itself ------------------------------------------------------------------------
mounts_under() {  # mount points at or below $1, deepest first
    findmnt -rn -o TARGET | while read -r t; do
        t=$(printf '%b' "$t")
        case "$t" in "$1" | "$1"/*) echo "$t" ;; esac
    done | sort -r
}

bootstrap() {
    [ -e "$CH/.slurm-escalate-debootstrap" ] && return 0
    command -v debootstrap >/dev/null || {
        log "installing debootstrap on the host"
        DEBIAN_FRONTEND=noninteractive apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
    }
    local tmp="$CH.partial" t0=$SECONDS m
    for m in $(mounts_under "$tmp"); do umount -l "$m"; done
    rm -rf "$tmp"
    mkdir -p "$BASE"
    log "debootstrap --variant=minbase $SUITE (about a minute)"
    debootstrap --variant=minbase "$SUITE" "$tmp" >"$BASE/debootstrap-$REL.log" 2>&1 \
        || { tail -20 "$BASE/debootstrap-$REL.log" >&2; die "debootstrap failed (log: $BASE/debootstrap-$REL.log)"; }
    for m in $(mounts_under "$tmp"); do umount -l "$m"; done
    touch "$tmp/.slurm-escalate-debootstrap"
    mv "$tmp" "$CH"
    log "debootstrap took $((SECONDS - t0))s"
}

mount_all() {
    local d
    for d in proc dev dev/pts dev/shm sys; do mkdir -p "$CH/$d"; done
    mountpoint -q "$CH/proc" || mount --bind /proc "$CH/proc"
    mountpoint -q "$CH/dev" || mount --bind /dev "$CH/dev"
    mountpoint -q "$CH/dev/pts" || mount --bind /dev/pts "$CH/dev/pts"
    mountpoint -q "$CH/dev/shm" || mount --bind /dev/shm "$CH/dev/shm"
    if ! mountpoint -q "$CH/sys"; then
        # recursive, so the host's cgroup v1 mounts are visible; rslave so that unmounting
        # the chroot's copy never unmounts the host's /sys/fs/cgroup
        mount --rbind /sys "$CH/sys"
        mount --make-rslave "$CH/sys"
    fi
    mkdir -p "$CH$CHECKOUT"
    mountpoint -q "$CH$CHECKOUT" || mount --bind "$CHECKOUT" "$CH$CHECKOUT"
}

configure_base() {
    # the host's hostname must resolve inside (SlurmctldHost, NodeHostname)
    { grep -v 'slurm-escalate' /etc/hosts
      grep -qw -- "$HOST" /etc/hosts || echo "127.0.0.1 $HOST  # slurm-escalate"; } > "$CH/etc/hosts"
    cp -L /etc/resolv.conf "$CH/etc/resolv.conf" 2>/dev/null || true
    echo "$REL" > "$CH/.slurm-escalate-release"  # tells "start" inside which release this is
    echo "$TAG $P" > "$CH/.slurm-escalate-names"
    # sid's Release file can be past its Valid-Until date on the mirror; harmless for trixie
    echo 'Acquire::Check-Valid-Until "false";' > "$CH/etc/apt/apt.conf.d/99slurm-escalate"
    # keep package scripts from starting daemons (MariaDB on the host's port 3306, munge...)
    printf '#!/bin/sh\nexit 101\n' > "$CH/usr/sbin/policy-rc.d"
    chmod +x "$CH/usr/sbin/policy-rc.d"
}

install_packages() {
    local stamp="$CH/.slurm-escalate-packages" want="${PACKAGES[*]}"
    [ "$(cat "$stamp" 2>/dev/null)" = "$want" ] && return 0
    local t0=$SECONDS
    log "apt-get install ${PACKAGES[*]}"
    in_chroot DEBIAN_FRONTEND=noninteractive apt-get update -qq
    in_chroot DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${PACKAGES[@]}" \
        >"$BASE/apt-$REL.log" 2>&1 || { tail -20 "$BASE/apt-$REL.log" >&2; die "apt-get install failed"; }
    in_chroot apt-get clean
    echo "$want" > "$stamp"
    log "package install took $((SECONDS - t0))s"
}

# slurmdbd crashes at start with trixie's/sid's libmariadb3 11.8 ("Number of columns in result (=1)
# set execeeds maxmimum allowed number of columns (=0)"); bookworm's 10.11 works. It is fetched with
# the host's apt (Debian 12) and unpacked beside, used only by slurmdbd through LD_LIBRARY_PATH.
libmariadb_workaround() {
    LIBMARIADB_DIR=$(cd "$CH" && find ".$IN_LIBMARIADB" -name libmariadb.so.3 -printf '%h\n' 2>/dev/null | head -1 || true)
    if [ -z "$LIBMARIADB_DIR" ]; then
        log "fetching bookworm's libmariadb3 for slurmdbd"
        local tmp
        tmp=$(mktemp -d)
        (cd "$tmp" && apt-get download -qq libmariadb3 >/dev/null 2>&1) || {
            DEBIAN_FRONTEND=noninteractive apt-get update -qq
            (cd "$tmp" && apt-get download -qq libmariadb3 >/dev/null)
        }
        mkdir -p "$CH$IN_LIBMARIADB"
        dpkg -x "$tmp"/libmariadb3_*.deb "$CH$IN_LIBMARIADB"
        rm -rf "$tmp"
        LIBMARIADB_DIR=$(cd "$CH" && find ".$IN_LIBMARIADB" -name libmariadb.so.3 -printf '%h\n' | head -1)
        [ -n "$LIBMARIADB_DIR" ] || die "libmariadb.so.3 not found in the downloaded package"
    fi
    LIBMARIADB_DIR="${LIBMARIADB_DIR#.}"
}

# The daemons run under their own command names (a24-slurmctld, a24-mysqld...): hard links made
# here. The host's scripts and tests find their daemons with pgrep/pkill -x slurmctld,
# pkill -f /usr/sbin/slurmd, pgrep -f mariadbd...; under the packages' names the chroot's daemons
# would be stopped by them, or taken for the host's. Slurm's daemons still get their own name as
# argv[0] (start_slurm_daemon): Slurm decides from it which daemon it is (certmgr, reconfigure).
daemon_links() {
    local pair name target
    for pair in munged:/usr/sbin/munged mysqld:/usr/sbin/mariadbd slurmdbd:/usr/sbin/slurmdbd \
        slurmctld:/usr/sbin/slurmctld slurmd:/usr/sbin/slurmd; do
        # the real file, resolved inside the chroot: /usr/sbin/slurmctld is a symlink through
        # /etc/alternatives to slurmctld-wlm. A link to the symlink would make /proc/self/exe, which
        # Slurm re-executes on reconfigure, the -wlm file, and the daemon's name slurmctld-wlm.
        target=$(in_chroot readlink -f "${pair#*:}")
        [ -f "$CH$target" ] && [ ! -L "$CH$target" ] || die "no ${pair#*:} in the chroot"
        name="$CH/usr/local/sbin/$TAG-${pair%%:*}"
        if [ -L "$name" ] || ! [ "$name" -ef "$CH$target" ]; then
            rm -f "$name"
            ln "$CH$target" "$name"
        fi
    done
}

start_slurm_daemon() {  # start_slurm_daemon [VAR=VALUE...] NAME ARGS...: /usr/local/sbin/$TAG-NAME, argv[0] NAME
    local envs=()
    while [[ "$1" == *=* ]]; do envs+=("$1"); shift; done
    local name=$1; shift
    # argv[0] without /usr/sbin, so the host's pgrep -f /usr/sbin/slurmctld does not match it
    in_chroot "${envs[@]}" bash -c 'exec -a "$0" "$@"' "$name" "/usr/local/sbin/$TAG-$name" "$@"
}

render() {  # render TEMPLATE: stdout
    local sed_args=(-e "s|@HOST@|$HOST|g" -e "s|@STATE@|$IN_STATE|g" -e "s|@LOG@|$IN_LOG|g"
        -e "s|@RELEASE@|$REL|g" -e "s|@SUITE@|$SUITE|g" -e "s|@CLUSTER@|$CLUSTER|g" -e "s|@TAG@|$TAG|g"
        -e "s|@CTLD_PORT@|$CTLD_PORT|g" -e "s|@SLURMD_PORT@|$SLURMD_PORT|g" -e "s|@DBD_PORT@|$DBD_PORT|g"
        -e "s|@MARIADB_PORT@|$MARIADB_PORT|g")
    local i
    for i in "${!NODE_SUFFIXES[@]}"; do
        sed_args+=(-e "s|@NODE_PORT_${NODE_SUFFIXES[$i]^^}@|${NODE_PORTS[$i]}|g")
    done
    sed "${sed_args[@]}" "$1"
}

render_config() {
    local conf="$CH/etc/slurm"
    mkdir -p "$conf" "$CH$IN_STATE/ctld" "$CH$IN_LOG"
    local n
    for n in "${NODES[@]}"; do mkdir -p "$CH$IN_STATE/slurmd-$n"; done  # 26.05's slurmd needs it first
    render "$HERE/chroot/slurm.conf.template" > "$conf/slurm.conf.new"
    grep -q @ "$conf/slurm.conf.new" && die "unrendered @...@ left in slurm.conf"
    if ! cmp -s "$conf/slurm.conf.new" "$conf/slurm.conf" 2>/dev/null; then
        mv "$conf/slurm.conf.new" "$conf/slurm.conf"
        CONFIG_CHANGED=1
    else
        rm -f "$conf/slurm.conf.new"
    fi
    cp "$HERE/cgroup.conf" "$conf/cgroup.conf"
    render "$HERE/chroot/slurmdbd.conf.template" > "$conf/slurmdbd.conf"
    chmod 600 "$conf/slurmdbd.conf"
    chmod 644 "$conf/slurm.conf" "$conf/cgroup.conf"
}

# ---- daemons ----------------------------------------------------------------------------------
start_munge() {
    # the chroot's own key and its own socket (the chroot's /run/munge, not the host's /run)
    in_chroot bash -c '
        mkdir -p /run/munge /var/log/munge /var/lib/munge
        chown munge:munge /run/munge /var/log/munge /var/lib/munge /etc/munge
        [ -s /etc/munge/munge.key ] || dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key 2>/dev/null
        chown munge:munge /etc/munge/munge.key && chmod 400 /etc/munge/munge.key'
    if ! running "$TAG-munged"; then
        log "starting munged"
        rm -f "$CH"/run/munge/munged.socket.2 "$CH"/run/munge/munged.socket.2.lock "$CH"/run/munge/munged.pid
        chroot --userspec=munge:munge "$CH" /usr/bin/env -i PATH="$IN_PATH" "/usr/local/sbin/$TAG-munged" 9>&-
    fi
    wait_for 20 munge in_chroot bash -c 'munge -n | unmunge'
}

# shellcheck disable=SC2120
mariadb() { in_chroot mariadb --socket=/run/mysqld/mysqld.sock -uroot "$@"; }

start_mariadb() {
    mkdir -p "$CH/run/mysqld"
    in_chroot chown mysql:mysql /run/mysqld
    # the package's own data directory (trixie: /var/lib/mysql, sid: /var/lib/mariadb), which its
    # postinst initialises; initialised here if it was not
    local datadir
    datadir=$(in_chroot /usr/sbin/mariadbd --verbose --help 2>/dev/null | awk '$1 == "datadir" {print $2}')
    datadir="${datadir%/}"
    [ -n "$datadir" ] || datadir=/var/lib/mysql
    if [ ! -d "$CH$datadir/mysql" ]; then
        log "initialising mariadb in $datadir"
        in_chroot mariadb-install-db --user=mysql --datadir="$datadir" --skip-test-db >/dev/null
    fi
    if ! running "$TAG-mysqld"; then
        log "starting mariadb on port $MARIADB_PORT"
        rm -f "$CH/run/mysqld/mysqld.sock" "$CH/run/mysqld/mysqld.sock.lock" "$CH/run/mysqld/mysqld.pid"
        (exec 9>&-; cd /; setsid chroot "$CH" /usr/bin/env -i PATH="$IN_PATH" LANG=C.UTF-8 \
            "/usr/local/sbin/$TAG-mysqld" --basedir=/usr --user=mysql --datadir="$datadir" \
            --socket=/run/mysqld/mysqld.sock --pid-file=/run/mysqld/mysqld.pid \
            --port="$MARIADB_PORT" --bind-address=127.0.0.1 \
            --innodb-snapshot-isolation=OFF --innodb-lock-wait-timeout=900 \
            >"$CH$IN_LOG/mariadb.log" 2>&1 </dev/null &)
    fi
    wait_for 60 mariadb mariadb -e 'SELECT 1'
    mariadb <<'SQL'
CREATE DATABASE IF NOT EXISTS slurm_acct_db;
CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY 'escalate';
GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost';
FLUSH PRIVILEGES;
SQL
}

start_slurmdbd() {
    if ! running "$TAG-slurmdbd"; then
        log "starting slurmdbd (with bookworm's libmariadb3)"
        start_slurm_daemon LD_LIBRARY_PATH="$LIBMARIADB_DIR" slurmdbd
    fi
    wait_for 60 slurmdbd in_chroot sacctmgr -n list cluster
    if ! in_chroot sacctmgr -n -P list cluster format=cluster | grep -qx "$CLUSTER"; then
        in_chroot sacctmgr -i add cluster "$CLUSTER" >/dev/null
    fi
}

start_slurmctld() {
    if [ "${CONFIG_CHANGED:-0}" = 1 ] && running "$TAG-slurmctld"; then
        log "slurm.conf changed: restarting slurmctld and slurmd"
        stop_named "$TAG-slurmd" "$TAG-slurmctld"
    fi
    if ! running "$TAG-slurmctld"; then
        log "starting slurmctld on port $CTLD_PORT"
        start_slurm_daemon slurmctld
    fi
    wait_for 60 slurmctld in_chroot scontrol ping
}

start_slurmd() {
    local n
    for n in "${NODES[@]}"; do
        if ! slurmd_running "$n"; then
            log "starting slurmd -N $n"
            start_slurm_daemon slurmd -N "$n"
        fi
    done
}

nodes_idle() {
    local out bad
    out=$(in_chroot sinfo -h -N -o '%N %t') || return 1
    bad=$(awk '$2 !~ /^(idle|mix|alloc)$/ {print}' <<<"$out")
    [ -z "$bad" ] && [ "$(awk '{print $1}' <<<"$out" | sort -u | wc -l)" -eq ${#NODES[@]} ]
}

stop_named() {  # stop_named COMM...: TERM this chroot's processes of these names, wait
    local name p pids=() alive=()
    for name in "$@"; do
        for p in $(pids_named "$name"); do pids+=("$p"); done
    done
    [ ${#pids[@]} -gt 0 ] || return 0
    kill -TERM "${pids[@]}" 2>/dev/null || true
    local i
    for ((i = 0; i < 150; i++)); do
        alive=()
        for p in "${pids[@]}"; do  # a zombie (state Z) has stopped too
            kill -0 "$p" 2>/dev/null && [ "$(awk '{print $3}' "/proc/$p/stat" 2>/dev/null)" != Z ] && alive+=("$p")
        done
        [ ${#alive[@]} -gt 0 ] || return 0
        sleep 0.2
    done
    log "still running after 30s, killing: ${alive[*]}"
    kill -KILL "${alive[@]}" 2>/dev/null || true
}

# ---- commands ---------------------------------------------------------------------------------
lock() {
    mkdir -p "$BASE"
    exec 9>"$BASE/.lock-$REL"
    flock 9
}

wait_nodes_idle() {
    local i
    for ((i = 0; i < 120; i++)); do
        nodes_idle && return 0
        # nodes left DOWN/DRAINED from an earlier run come back with a resume
        in_chroot sinfo -h -N -o '%N %t' 2>/dev/null | awk '$2 ~ /(down|drain)/ {print $1}' | sort -u \
            | while read -r n; do in_chroot scontrol update nodename="$n" state=resume 2>/dev/null || true; done
        sleep 1
    done
    nodes_idle || { in_chroot sinfo -N -l >&2; die "nodes did not become idle"; }
}

not_inside() { [ "$INSIDE" = 0 ] || die "'$1' runs on the host, not inside the chroot"; }

# Everything before the config and the daemons: debootstrap, packages. Network and disk
# bound, so ./dev.sh test runs it ("build") in the background while the host's suite runs.
# slurm.conf is rendered by "up" only: a changed one restarts the running daemons there.
prepare() {
    bootstrap
    mount_all
    configure_base
    install_packages
    libmariadb_workaround
    daemon_links
}

build() {
    [ "$(id -u)" = 0 ] || die "run as root"
    not_inside build
    lock
    local t0=$SECONDS
    prepare
    log "chroot $CH built in $((SECONDS - t0))s (no daemon started; $0 up $REL configures and starts them)"
}

# Start whatever of slurmdbd, slurmctld and the slurmd's is not running. From the host that is
# "up". Inside the chroot (a test that stopped slurmdbd or slurmctld through its
# SLURM_ESCALATE_TEST_DAEMON_PREFIX name) munged and MariaDB must still run; slurmdbd gets
# bookworm's libmariadb3 as in "up".
start() {
    [ "$(id -u)" = 0 ] || die "run as root"
    if [ "$INSIDE" = 0 ]; then up; return; fi
    running "$TAG-munged" || die "munged of $REL is not running: start the cluster from the host ($0 up $REL)"
    running "$TAG-mysqld" || die "MariaDB of $REL is not running: start the cluster from the host ($0 up $REL)"
    LIBMARIADB_DIR=$(find "$IN_LIBMARIADB" -name libmariadb.so.3 -printf '%h\n' 2>/dev/null | head -1 || true)
    [ -n "$LIBMARIADB_DIR" ] || die "no libmariadb.so.3 under $IN_LIBMARIADB"
    CONFIG_CHANGED=0
    local t0=$SECONDS
    start_slurmdbd
    start_slurmctld
    start_slurmd
    wait_nodes_idle
    log "cluster $CLUSTER started from inside the chroot in $((SECONDS - t0))s"
}

# Daemons of these names from another chroot (the same release under another
# SLURM_ESCALATE_CHROOT_BASE) would hold this cluster's ports.
foreign_daemons() {
    local p r
    for p in /proc/[0-9]*; do
        case "$(cat "$p/comm" 2>/dev/null)" in "$TAG"-*) ;; *) continue ;; esac
        r=$(readlink "$p/root" 2>/dev/null) || continue
        [ "$r" = "$CH" ] || echo "$r"
    done | sort -u
}

# A port of this cluster held by a process not of this cluster (another cluster on the machine)
# would only show as a daemon that does not come up: say so before starting anything.
check_ports() {
    command -v ss >/dev/null || return 0
    local port owner
    for port in "$CTLD_PORT" "$DBD_PORT" "$MARIADB_PORT" "${NODE_PORTS[@]}"; do
        owner=$(ss -ltnpH "( sport = :$port )" 2>/dev/null | grep -o 'users:(("[^"]*"' | head -1 | cut -d'"' -f2 || true)
        [ -z "$owner" ] || [[ "$owner" == "$TAG"-* ]] \
            || die "port $port of cluster $CLUSTER is taken by another process ($owner)"
    done
}

up() {
    [ "$(id -u)" = 0 ] || die "run as root"
    not_inside up
    lock
    local t0=$SECONDS other
    other=$(foreign_daemons)
    [ -z "$other" ] || die "a cluster named $TAG-* already runs from the chroot $other (ports ${P}xxx):" \
        "bring it down first, or give this one other names (SLURM_ESCALATE_CHROOT_ALT=1)"
    check_ports
    prepare
    CONFIG_CHANGED=0
    render_config
    local t1=$SECONDS
    start_munge
    start_mariadb
    start_slurmdbd
    start_slurmctld
    start_slurmd
    wait_nodes_idle
    log "cluster $CLUSTER (Slurm $(in_chroot sinfo -V | awk '{print $2}'), $SUITE) up in $((SECONDS - t0))s" \
        "(daemons $((SECONDS - t1))s); run commands with: $0 run $REL -- CMD"
    in_chroot sinfo >&2
}

down() {
    [ "$(id -u)" = 0 ] || die "run as root"
    not_inside down
    [ -d "$CH" ] || { log "no chroot at $CH"; return 0; }
    lock
    stop_named "$TAG-slurmd" "$TAG-slurmctld"
    stop_named "$TAG-slurmdbd"
    stop_named "$TAG-mysqld" "$TAG-munged"
    # whatever else still runs in this chroot (job steps, a shell from "run"), then unmount
    local left
    mapfile -t left < <(chroot_pids)
    if [ ${#left[@]} -gt 0 ]; then
        log "stopping other processes in the chroot: ${left[*]}"
        kill -TERM "${left[@]}" 2>/dev/null || true
        sleep 2
        mapfile -t left < <(chroot_pids)
        [ ${#left[@]} -eq 0 ] || kill -KILL "${left[@]}" 2>/dev/null || true
        sleep 0.5
    fi
    local m
    for m in $(mounts_under "$CH"); do
        umount "$m" 2>/dev/null || umount -l "$m"
    done
    log "stopped and unmounted ($CH kept; rm -rf it to start from scratch)"
}

status() {
    not_inside status
    [ -d "$CH" ] || { log "no chroot at $CH"; return 1; }
    echo "chroot: $CH ($(du -sh --one-file-system --exclude="$CH$CHECKOUT" "$CH" 2>/dev/null | cut -f1))"
    echo "mounts: $(mounts_under "$CH" | wc -l)"
    local p
    for p in $(chroot_pids); do
        printf '  %-7s %-15s %s\n' "$p" "$(cat "/proc/$p/comm" 2>/dev/null)" \
            "$(tr '\0' ' ' < "/proc/$p/cmdline" 2>/dev/null)"
    done
    if running "$TAG-slurmctld"; then in_chroot sinfo -N -l; else echo "slurmctld not running"; fi
}

run() {
    [ "$(id -u)" = 0 ] || die "run as root"
    not_inside run
    [ -e "$CH/.slurm-escalate-packages" ] || die "no chroot yet: $0 up $REL"
    mount_all
    # the same directory inside: the checkout (bind-mounted) or a directory of the chroot named by
    # its host path; anywhere else (the host's /tmp is not the chroot's /tmp) runs in the checkout
    local cwd="$PWD"
    case "$cwd/" in
        "$CHECKOUT"/*) ;;
        "$CH"/*) cwd="${cwd#"$CH"}"; cwd="${cwd:-/}" ;;
        *) log "$cwd is not visible inside the chroot: running in $CHECKOUT"; cwd="$CHECKOUT" ;;
    esac
    local env=(PATH="$IN_PATH" HOME=/root LANG=C.UTF-8)
    [ -x "$VENV/bin/python" ] && env=(PATH="$VENV/bin:$IN_PATH" VIRTUAL_ENV="$VENV" "${env[@]:1}")
    [ -f "$CH$IN_CA" ] && env+=(PIP_CERT="$IN_CA")
    local v
    for v in TERM CI $(compgen -e | grep -E '^(SLURM_ESCALATE_|PYTEST_)' || true); do
        [ -n "${!v+x}" ] && env+=("$v=${!v}")
    done
    # which cluster this is, for the tests: the names of its daemons (a disruptive test stops
    # a24-slurmdbd, never the host's slurmdbd: /proc is shared) and how to restart them ("start")
    env+=(SLURM_ESCALATE_CHROOT_RELEASE="$REL" SLURM_ESCALATE_TEST_DAEMON_PREFIX="$TAG-")
    exec chroot "$CH" /usr/bin/env -i "${env[@]}" /bin/bash -c 'cd "$1" && shift && exec "$@"' bash "$cwd" "$@"
}

venv() {
    [ "$(id -u)" = 0 ] || die "run as root"
    not_inside venv
    [ -e "$CH/.slurm-escalate-packages" ] || die "no chroot yet: $0 up $REL"
    mount_all
    # pip in the chroot fails TLS verification without the machine's CA bundle
    mkdir -p "$CH$(dirname "$IN_CA")"
    cp /etc/ssl/certs/ca-certificates.crt "$CH$IN_CA"
    cp -L /etc/resolv.conf "$CH/etc/resolv.conf" 2>/dev/null || true
    if [ ! -x "$VENV/bin/python" ]; then
        log "python3 -m venv $VENV"
        in_chroot python3 -m venv "$VENV"
    fi
    local stamp="$VENV/.slurm-escalate-installed" want
    want=$(sha256sum "$CHECKOUT/pyproject.toml" | cut -d' ' -f1)
    if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
        log "pip install -e '.[test]' into $VENV"
        in_chroot PIP_CERT="$IN_CA" PIP_DISABLE_PIP_VERSION_CHECK=1 \
            "$VENV/bin/python" -m pip install -q -e "${CHECKOUT}[test]"
        echo "$want" > "$stamp"
    fi
    log "venv ready: $0 run $REL -- python -m pytest ..."
}

usage() { sed -n '4,14p' "$0" >&2; exit 2; }

[ $# -ge 2 ] || usage
cmd="$1"
select_release "$2"
shift 2
case "$cmd" in
    up) up ;;
    build) build ;;
    start) start ;;
    down) down ;;
    status) status ;;
    venv) venv ;;
    run) [ "${1:-}" = -- ] && shift; [ $# -gt 0 ] || usage; run "$@" ;;
    *) usage ;;
esac
