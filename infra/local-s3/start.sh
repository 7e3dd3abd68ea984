#!/usr/bin/env bash
# Start a throwaway single-node Ceph cluster (1 mon, 1 memstore OSD, no mgr, no cephx) and a
# radosgw S3 endpoint on loopback, for tests and benchmarks. Everything lives in $CEPH_DIR and in
# memory; stop.sh kills it. Adapted from a recipe tested on Ceph 16 (pacific).
#
# env: CEPH_DIR (default /tmp/lisa-s3.$$), RGW_PORT / MON_PORT (default: a free loopback port),
#      RGW_ACCESS_KEY, RGW_SECRET_KEY, MEMSTORE_BYTES (default 1 GiB: tests upload a few hundred MB),
#      LOCAL_S3_TIMING=1 prints how long each phase took.
# stdout: shell assignments (CEPH_DIR=..., RGW_PORT=..., RGW_ENDPOINT=...) for `eval`.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib.sh
. "$HERE/lib.sh"

ensure_ceph_installed

D=${CEPH_DIR:-/tmp/lisa-s3.$$}
AK=${RGW_ACCESS_KEY:-TESTACCESSKEY}; SK=${RGW_SECRET_KEY:-TESTSECRETKEY0123456789}
MON_PORT=${MON_PORT:-$(free_port)}
RGW_PORT=${RGW_PORT:-$(free_port)}
T0=$(now_ms)
phase() { [ "${LOCAL_S3_TIMING:-}" = 1 ] && echo "local-s3: $1 at $(( $(now_ms) - T0 )) ms" >&2; return 0; }

# $D is wiped: refuse a directory with other things in it (a mistyped CEPH_DIR=$HOME)
if [ -d "$D" ] && [ -n "$(ls -A "$D")" ] && [ ! -f "$D/ceph.conf" ]; then
  echo "local-s3: $D is not empty and holds no ceph.conf; refusing to wipe it" >&2; exit 1
fi
rm -rf "$D"; mkdir -p "$D"/{mon,osd,log,run,rgw}
FSID=$(cat /proc/sys/kernel/random/uuid)
cat > "$D/ceph.conf" <<CONF
[global]
fsid = $FSID
mon_host = v2:127.0.0.1:$MON_PORT
public_addr = 127.0.0.1
ms_bind_ipv6 = false
auth_cluster_required = none
auth_service_required = none
auth_client_required = none
ms_mon_client_mode = crc secure
osd_pool_default_size = 1
osd_pool_default_min_size = 1
mon_allow_pool_size_one = true
mon_warn_on_pool_no_redundancy = false
osd_pool_default_pg_num = 8
osd_pool_default_pgp_num = 8
osd_pool_default_pg_autoscale_mode = off
osd_crush_chooseleaf_type = 0
osd_objectstore = memstore
memstore_device_bytes = ${MEMSTORE_BYTES:-1073741824}
mon_data_avail_warn = 1
# a one-mon cluster gains nothing from batching map updates; every pool RGW creates costs one
paxos_propose_interval = 0.01
paxos_min_wait = 0.001
run_dir = $D/run
pid_file = $D/run/\$name.pid
admin_socket = $D/run/\$name.asok
log_file = $D/log/\$name.log
mon_data = $D/mon/\$cluster-\$id
osd_data = $D/osd/\$cluster-\$id
keyring = $D/keyring
[client.rgw.gw]
rgw_frontends = beast endpoint=127.0.0.1:$RGW_PORT
rgw_data = $D/rgw
# Overwritten and deleted objects' data is only freed by RGW's garbage collector, by default two
# hours later: repeated uploads then fill the memstore, and a full OSD blocks every write forever.
rgw_gc_obj_min_wait = 2
rgw_gc_processor_period = 2
rgw_gc_processor_max_time = 2
CONF
C=(-c "$D/ceph.conf")
ceph-authtool --create-keyring "$D/keyring" --gen-key -n mon. --cap mon 'allow *' >/dev/null
monmaptool --create --addv a "[v2:127.0.0.1:$MON_PORT]" --fsid "$FSID" "$D/monmap" >/dev/null
ceph-mon "${C[@]}" --mkfs -i a --monmap "$D/monmap" --keyring "$D/keyring"
phase "mon mkfs"
ceph-mon "${C[@]}" -i a                                   # daemonizes; pid in $D/run/mon.a.pid
phase "mon started"
OSD_UUID=$(cat /proc/sys/kernel/random/uuid)
ID=$(ceph "${C[@]}" osd new "$OSD_UUID")
phase "osd new"
mkdir -p "$D/osd/ceph-$ID"
ceph-osd "${C[@]}" -i "$ID" --mkfs --osd-uuid "$OSD_UUID" 2>>"$D/log/osd-mkfs.log"
phase "osd mkfs"
ceph-osd "${C[@]}" -i "$ID" 2>>"$D/log/osd-start.log"
phase "osd started"
# pre-create RGW pools so the first CreateBucket/PutObject don't stall on pool creation
for p in default.rgw.buckets.index default.rgw.buckets.data; do ceph "${C[@]}" osd pool create "$p" 8 8 >/dev/null 2>&1; done
phase "pools"
radosgw "${C[@]}" -n client.rgw.gw
phase "radosgw spawned"
radosgw-admin "${C[@]}" user create --uid=test --display-name=test --access-key="$AK" --secret-key="$SK" >/dev/null
phase "user created"
if ! wait_http "$RGW_PORT" 300; then echo "local-s3: radosgw did not come up on 127.0.0.1:$RGW_PORT; logs in $D/log" >&2; exit 1; fi
phase "radosgw answers"
echo "CEPH_DIR=$D"
echo "RGW_PORT=$RGW_PORT"
echo "RGW_ENDPOINT=http://127.0.0.1:$RGW_PORT"
