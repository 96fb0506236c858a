#!/usr/bin/env bash
# Bring up (or down) a real multi-node Slurm cluster on this one Debian host, as root.
#   docker-cluster/cluster.sh up      install packages if missing, start everything, wait for idle nodes
#   docker-cluster/cluster.sh down    stop every daemon this script started
#   docker-cluster/cluster.sh status  show sinfo
# Idempotent: "up" on a running cluster only checks it. No Docker engine is needed.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
STATE=/var/lib/slurm-escalate-cluster
LOG=/var/log/slurm-escalate-cluster
CONF_DIR=/etc/slurm
NODES=(d1 d2 n1 n2 w1 w2)
HOST="$(hostname)"

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

render_config() {
    mkdir -p "$CONF_DIR" "$STATE/ctld" "$LOG"
    for n in "${NODES[@]}"; do mkdir -p "$STATE/slurmd-$n"; done
    sed -e "s|@HOST@|$HOST|g" -e "s|@STATE@|$STATE|g" -e "s|@LOG@|$LOG|g" \
        "$HERE/slurm.conf.template" > "$CONF_DIR/slurm.conf.new"
    if ! cmp -s "$CONF_DIR/slurm.conf.new" "$CONF_DIR/slurm.conf" 2>/dev/null; then
        mv "$CONF_DIR/slurm.conf.new" "$CONF_DIR/slurm.conf"
        CONFIG_CHANGED=1
    else
        rm -f "$CONF_DIR/slurm.conf.new"
    fi
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

nodes_idle() {
    local bad
    bad=$(sinfo -h -N -o '%N %t' | awk '$2 !~ /^(idle|mix|alloc)$/ {print}')
    [ -z "$bad" ] && [ "$(sinfo -h -N -o '%N' | sort -u | wc -l)" -eq ${#NODES[@]} ]
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
    stop_slurm
    pkill -x slurmdbd 2>/dev/null || true
    pkill -x mariadbd 2>/dev/null || true
    pkill -x munged 2>/dev/null || true
    log "cluster stopped"
}

case "${1:-up}" in
    up) up ;;
    down) down ;;
    status) sinfo -N -l ;;
    *) die "usage: $0 up|down|status" ;;
esac
