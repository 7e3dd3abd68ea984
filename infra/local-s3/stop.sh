#!/usr/bin/env bash
# Stop the cluster start.sh started in $CEPH_DIR (argument 1 overrides) and delete its directory.
# Safe to call twice or after a failed start. Order matters: radosgw, then the OSD, then the mon —
# an OSD whose mon is already gone waits 5 s (osd_mon_shutdown_timeout) before exiting. Each daemon
# gets SIGTERM, then SIGKILL after 5 s: the cluster holds only test data, and a leaked daemon would
# keep its ports and memory.
set -uo pipefail
D=${1:-${CEPH_DIR:?stop.sh needs CEPH_DIR (or the directory as argument)}}
[ -d "$D" ] || exit 0
CONF="$D/ceph.conf"

# a zombie (killed, not yet reaped by init) answers kill -0 but holds nothing: count it as gone
running() { local s; s=$(cut -d' ' -f3 "/proc/$1/stat" 2>/dev/null) && [ "$s" != Z ]; }
# pids of this cluster's daemons whose command line matches $1. Matching on our own ceph.conf path
# (unique per run) rather than pid files also finds a daemon forked before it wrote its pid file.
daemons() { pgrep -f -- "^$1 -c $CONF( |\$)" 2>/dev/null; }

stop_group() {
  local pids i p alive
  mapfile -t pids < <(daemons "$1")
  ((${#pids[@]})) || return 0
  kill -TERM "${pids[@]}" 2>/dev/null
  for ((i = 0; i < 50; i++)); do
    alive=()
    for p in "${pids[@]}"; do running "$p" && alive+=("$p"); done
    ((${#alive[@]})) || return 0
    sleep 0.1
  done
  echo "local-s3: $1 ignored SIGTERM for 5 s; killing ${alive[*]}" >&2
  kill -KILL "${alive[@]}" 2>/dev/null
}

stop_group radosgw
stop_group ceph-osd
stop_group ceph-mon
stop_group '[a-z-]+'   # anything else started with this conf (a radosgw-admin cut short)
# only what start.sh made: a dir with its ceph.conf, or an empty one
if [ -f "$CONF" ] || [ -z "$(ls -A "$D")" ]; then rm -rf "$D"; fi
exit 0
