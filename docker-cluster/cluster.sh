#!/usr/bin/env bash
# Bring up (or down) two real multi-node Slurm 22.05 clusters on this one Debian host, as root.
#   docker-cluster/cluster.sh up      install packages if missing, start everything, wait for idle nodes
#   docker-cluster/cluster.sh down    stop every daemon this script started (both clusters)
#   docker-cluster/cluster.sh status  show sinfo of both clusters
# Idempotent: "up" on a running cluster only checks it. No Docker engine is needed.
#
# The two clusters share the Debian binaries, munge (one key), MariaDB and one slurmdbd (port 16819):
#   "escalate" (the tests' cluster): /etc/slurm, slurmctld 16817, nodes d1 d2 n1 n2 w1 w2 (ports
#       17001-17022), state /var/lib/slurm-escalate-cluster, logs /var/log/slurm-escalate-cluster.
#       Tuned for the tests: AccountingStoreFlags=job_comment, MaxArraySize=2001, MinJobAge=300.
#   "site" (issue 11's site profiles, docker-cluster/site/README.md): /etc/slurm-site, slurmctld
#       20817, nodes s1 s2 s3 (ports 20001-20003), state /var/lib/slurm-escalate-site, logs
#       /var/log/slurm-escalate-site. Slurm's defaults where the profiles need them: no comments in
#       accounting, MinJobAge=10, MaxArraySize 1001, JobRequeue=1, preemption by partition PriorityTier
#       with PreemptMode=REQUEUE, AccountingStorageEnforce=associations,limits,qos and a partition
#       "limited" whose partition QOS "limited" has MaxSubmitJobsPerUser=4.
#       Clients: SLURM_CONF=/etc/slurm-site/slurm.conf sinfo, or from the host config: sinfo -M site.
# The site's daemons run as hard links /usr/local/sbin/site-slurmctld and site-slurmd (command names
# site-slurmctld, site-slurmd; argv[0] without /usr/sbin), so that "pkill -x slurmctld" in the
# outage tests and this script's "pgrep -f /usr/sbin/slurmctld" only ever see the host cluster's
# daemons, and the site's are found only by their own names.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
STATE=/var/lib/slurm-escalate-cluster
LOG=/var/log/slurm-escalate-cluster
CONF_DIR=/etc/slurm
NODES=(d1 d2 n1 n2 w1 w2)
HOST="$(hostname)"
SITE_STATE=/var/lib/slurm-escalate-site
SITE_LOG=/var/log/slurm-escalate-site
SITE_CONF_DIR=/etc/slurm-site
SITE_CONF="$SITE_CONF_DIR/slurm.conf"
SITE_NODES=(s1 s2 s3)

log() { printf '[cluster] %s\n' "$*" >&2; }
die() { printf '[cluster] ERROR: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "run as root"

install_packages() {
    local missing=()
    for pkg in slurm-wlm slurmdbd slurm-client munge mariadb-server; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        log "installing ${missing[*]}"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        # policy-rc.d keeps the packages' init scripts from starting daemons we manage ourselves
        printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
        apt-get install -y -qq "${missing[@]}" >/dev/null
        rm -f /usr/sbin/policy-rc.d
    fi
}

# render_slurm_conf TEMPLATE CONF STATE LOG: CONF from TEMPLATE; status 0 when CONF changed
render_slurm_conf() {
    sed -e "s|@HOST@|$HOST|g" -e "s|@STATE@|$3|g" -e "s|@LOG@|$4|g" "$1" > "$2.new"
    if cmp -s "$2.new" "$2" 2>/dev/null; then
        rm -f "$2.new"
        return 1
    fi
    mv "$2.new" "$2"
}

render_config() {
    mkdir -p "$CONF_DIR" "$STATE/ctld" "$LOG"
    for n in "${NODES[@]}"; do mkdir -p "$STATE/slurmd-$n"; done
    render_slurm_conf "$HERE/slurm.conf.template" "$CONF_DIR/slurm.conf" "$STATE" "$LOG" \
        && CONFIG_CHANGED=1
    cp "$HERE/cgroup.conf" "$CONF_DIR/cgroup.conf"
    sed -e "s|@STATE@|$STATE|g" -e "s|@LOG@|$LOG|g" "$HERE/slurmdbd.conf.template" > "$CONF_DIR/slurmdbd.conf"
    chmod 600 "$CONF_DIR/slurmdbd.conf"
    chmod 644 "$CONF_DIR/slurm.conf" "$CONF_DIR/cgroup.conf"
}

running() { pgrep -f "$1" >/dev/null 2>&1; }

wait_for() {  # wait_for SECONDS DESCRIPTION CMD...
    local secs=$1 what=$2; shift 2
    local i
    for ((i = 0; i < secs * 2; i++)); do
        if "$@" >/dev/null 2>&1; then return 0; fi
        sleep 0.5
    done
    die "timed out after ${secs}s waiting for $what"
}

start_munge() {
    mkdir -p /run/munge /var/log/munge /var/lib/munge
    chown munge:munge /run/munge /var/log/munge /var/lib/munge /etc/munge
    [ -s /etc/munge/munge.key ] || { dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key 2>/dev/null; }
    chown munge:munge /etc/munge/munge.key && chmod 400 /etc/munge/munge.key
    if ! running /usr/sbin/munged; then
        log "starting munged"
        runuser -u munge -- /usr/sbin/munged
    fi
    wait_for 20 munge bash -c 'munge -n | unmunge'
}

start_mariadb() {
    mkdir -p /run/mysqld && chown mysql:mysql /run/mysqld
    if [ ! -d /var/lib/mysql/mysql ]; then
        log "initialising mariadb"
        mariadb-install-db --user=mysql --datadir=/var/lib/mysql >/dev/null
    fi
    if ! running mariadbd; then
        log "starting mariadbd"
        (cd / && setsid nohup /usr/sbin/mariadbd --user=mysql --datadir=/var/lib/mysql \
            --socket=/run/mysqld/mysqld.sock --bind-address=127.0.0.1 \
            >"$LOG/mariadb.log" 2>&1 < /dev/null &)
    fi
    wait_for 60 mariadb mariadb -uroot -e 'SELECT 1'
    mariadb -uroot <<'SQL'
CREATE DATABASE IF NOT EXISTS slurm_acct_db;
CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY 'escalate';
GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost';
FLUSH PRIVILEGES;
SQL
}

start_slurmdbd() {
    if ! running /usr/sbin/slurmdbd; then
        log "starting slurmdbd"
        /usr/sbin/slurmdbd
    fi
    wait_for 60 slurmdbd sacctmgr -n list cluster
    if ! sacctmgr -n -P list cluster format=cluster | grep -qx escalate; then
        sacctmgr -i add cluster escalate >/dev/null
    fi
}

start_slurmctld() {
    if [ "${CONFIG_CHANGED:-0}" = 1 ] && running /usr/sbin/slurmctld; then
        log "slurm.conf changed: restarting slurmctld and slurmd"
        stop_slurm
    fi
    if ! running /usr/sbin/slurmctld; then
        log "starting slurmctld"
        /usr/sbin/slurmctld
    fi
    wait_for 60 slurmctld scontrol ping
}

start_slurmd() {
    local n
    for n in "${NODES[@]}"; do
        if ! pgrep -f "slurmd -N $n\$" >/dev/null 2>&1; then
            log "starting slurmd -N $n"
            /usr/sbin/slurmd -N "$n"
        fi
    done
}

nodes_idle() {  # nodes_idle [site COUNT]: the host cluster's nodes, or the site's
    local run=() count=${#NODES[@]} bad
    if [ "${1:-}" = site ]; then run=(env SLURM_CONF="$SITE_CONF"); count=$2; fi
    bad=$("${run[@]}" sinfo -h -N -o '%N %t' | awk '$2 !~ /^(idle|mix|alloc)$/ {print}')
    [ -z "$bad" ] && [ "$("${run[@]}" sinfo -h -N -o '%N' | sort -u | wc -l)" -eq "$count" ]
}

# ---- the "site" cluster ------------------------------------------------------------------------

site() { SLURM_CONF="$SITE_CONF" "$@"; }  # a client command against the site cluster

render_site_config() {
    mkdir -p "$SITE_CONF_DIR" "$SITE_STATE/ctld" "$SITE_LOG"
    for n in "${SITE_NODES[@]}"; do mkdir -p "$SITE_STATE/slurmd-$n"; done
    render_slurm_conf "$HERE/site/slurm.conf.template" "$SITE_CONF" "$SITE_STATE" "$SITE_LOG" \
        && SITE_CONFIG_CHANGED=1
    cp "$HERE/cgroup.conf" "$SITE_CONF_DIR/cgroup.conf"
    chmod 644 "$SITE_CONF" "$SITE_CONF_DIR/cgroup.conf"
}

# Hard links to the real files (/usr/sbin/slurmctld is a symlink through /etc/alternatives to
# slurmctld-wlm): the process's command name is the link's name.
site_links() {
    local pair name target
    for pair in slurmctld:/usr/sbin/slurmctld slurmd:/usr/sbin/slurmd; do
        target=$(readlink -f "${pair#*:}")
        name="/usr/local/sbin/site-${pair%%:*}"
        if [ -L "$name" ] || ! [ "$name" -ef "$target" ]; then
            mkdir -p /usr/local/sbin
            rm -f "$name"
            ln "$target" "$name"
        fi
    done
}

site_daemon() {  # site_daemon NAME ARGS...: /usr/local/sbin/site-NAME with argv[0] NAME
    local name=$1; shift
    bash -c 'exec -a "$0" "$@"' "$name" "/usr/local/sbin/site-$name" "$@"
}

site_ctld_running() { pgrep -x site-slurmctld >/dev/null 2>&1; }
site_slurmd_running() { pgrep -x -f "slurmd -f $SITE_CONF -N $1" >/dev/null 2>&1; }

# Accounting objects of the site cluster, in the shared slurmdbd (before its slurmctld starts: the
# partition QOS must exist). "sacctmgr add cluster" creates the root account and root's association.
site_accounting() {
    if ! sacctmgr -n -P list cluster format=cluster | grep -qx site; then
        log "registering cluster site in slurmdbd"
        sacctmgr -i add cluster site >/dev/null
    fi
    if ! sacctmgr -n -P list qos format=name | grep -qx limited; then
        sacctmgr -i add qos limited >/dev/null
    fi
    if [ "$(sacctmgr -n -P list qos limited format=maxsubmitjobsperuser)" != 4 ]; then
        sacctmgr -i modify qos limited set MaxSubmitJobsPerUser=4 >/dev/null
    fi
    if ! sacctmgr -n -P list assoc cluster=site user=root format=account | grep -qx root; then
        sacctmgr -i add user root account=root cluster=site >/dev/null
    fi
}

start_site() {
    SITE_CONFIG_CHANGED=0
    render_site_config
    site_links
    site_accounting
    if [ "$SITE_CONFIG_CHANGED" = 1 ] && site_ctld_running; then
        log "site slurm.conf changed: restarting the site's slurmctld and slurmd"
        stop_site
    fi
    if ! site_ctld_running; then
        log "starting site-slurmctld"
        site_daemon slurmctld -f "$SITE_CONF"
    fi
    wait_for 60 "the site's slurmctld" site scontrol ping
    local n
    for n in "${SITE_NODES[@]}"; do
        if ! site_slurmd_running "$n"; then
            log "starting site-slurmd -N $n"
            site_daemon slurmd -f "$SITE_CONF" -N "$n"
        fi
    done
    local i
    for ((i = 0; i < 120; i++)); do
        nodes_idle site "${#SITE_NODES[@]}" && break
        site sinfo -h -N -o '%N %t' | awk '$2 ~ /(down|drain)/ {print $1}' | sort -u | while read -r n; do
            site scontrol update nodename="$n" state=resume 2>/dev/null || true
        done
        sleep 1
    done
    nodes_idle site "${#SITE_NODES[@]}" || { site sinfo -N -l >&2; die "the site's nodes did not become idle"; }
    # sbatch -M site from the host's config finds the site's slurmctld through slurmdbd
    wait_for 60 "cluster site in slurmdbd" bash -c \
        "sacctmgr -n -P list cluster site format=controlport | grep -qx 20817"
    log "site cluster up (SLURM_CONF=$SITE_CONF, or -M site):"
    site sinfo >&2
}

stop_site() {
    pkill -x site-slurmd 2>/dev/null || true
    pkill -x site-slurmctld 2>/dev/null || true
    local i
    for ((i = 0; i < 40; i++)); do
        pgrep -x site-slurmctld >/dev/null 2>&1 || pgrep -x site-slurmd >/dev/null 2>&1 || break
        sleep 0.5
    done
}


up() {
    install_packages
    CONFIG_CHANGED=0
    render_config
    start_munge
    start_mariadb
    start_slurmdbd
    start_slurmctld
    start_slurmd
    local i
    for ((i = 0; i < 120; i++)); do
        nodes_idle && break
        # nodes left DOWN/DRAINED from an earlier run come back with a resume
        sinfo -h -N -o '%N %t' | awk '$2 ~ /(down|drain)/ {print $1}' | sort -u | while read -r n; do
            scontrol update nodename="$n" state=resume 2>/dev/null || true
        done
        sleep 1
    done
    nodes_idle || { sinfo -N -l >&2; die "nodes did not become idle"; }
    log "cluster up:"
    sinfo >&2
    start_site
}

stop_slurm() {
    pkill -f '/usr/sbin/slurmd -N' 2>/dev/null || true
    pkill -x slurmctld 2>/dev/null || true
    local i
    for ((i = 0; i < 40; i++)); do
        running '/usr/sbin/slurm(ctld|d -N)' || break
        sleep 0.5
    done
}

down() {
    stop_site
    stop_slurm
    pkill -x slurmdbd 2>/dev/null || true
    pkill -x mariadbd 2>/dev/null || true
    pkill -x munged 2>/dev/null || true
    log "cluster stopped"
}

case "${1:-up}" in
    up) up ;;
    down) down ;;
    status) log "cluster escalate (/etc/slurm):"; sinfo -N -l
        log "cluster site ($SITE_CONF):"; site sinfo -N -l ;;
    *) die "usage: $0 up|down|status" ;;
esac
