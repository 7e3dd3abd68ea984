#!/usr/bin/env bash
# with-s3.sh <command...>: run a command with an S3 endpoint for the tests.
#
# If the caller already configured one (LISA_TEST_S3, AWS_ENDPOINT_URL_S3 or AWS_ENDPOINT_URL set),
# the command just runs. Otherwise a throwaway Ceph RGW starts on a free loopback port in a fresh
# /tmp/lisa-s3.XXXXXX, the bucket $LISA_TEST_BUCKET (default lisa-test) is created, and the command
# runs with LISA_TEST_S3=s3://<bucket>/, AWS_ENDPOINT_URL_S3, AWS_ACCESS_KEY_ID,
# AWS_SECRET_ACCESS_KEY and AWS_REGION=us-east-1. RGW is always stopped afterwards; the exit code
# is the command's (or 1 if no server could be started).
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib.sh
. "$HERE/lib.sh"

if [ $# -eq 0 ]; then echo "usage: with-s3.sh <command...>" >&2; exit 2; fi
if [ -n "${LISA_TEST_S3:-}${AWS_ENDPOINT_URL_S3:-}${AWS_ENDPOINT_URL:-}" ]; then exec "$@"; fi

ensure_ceph_installed || exit 1

export CEPH_DIR
CEPH_DIR=$(mktemp -d /tmp/lisa-s3.XXXXXX)
child=
# Signal a process and all its descendants: `npx tsx x.ts` is four processes deep, and npm does
# not pass signals on, so signalling only the direct child would orphan the actual command.
signal_tree() {
  local c
  for c in $(pgrep -P "$2" 2>/dev/null); do signal_tree "$1" "$c"; done
  kill "-$1" "$2" 2>/dev/null
}
cleanup() {
  [ -n "$child" ] && signal_tree TERM "$child" && wait "$child" 2>/dev/null
  bash "$HERE/stop.sh" "$CEPH_DIR"
}
trap cleanup EXIT
# forward a stop request to the command; the EXIT trap then stops RGW
trap '[ -n "$child" ] && signal_tree TERM "$child"; exit 143' TERM
trap '[ -n "$child" ] && signal_tree INT "$child"; exit 130' INT

t0=$(now_ms)
# a free port can be taken between choosing and binding it: one retry with fresh ports
started=
for attempt in 1 2; do
  if vars=$(bash "$HERE/start.sh"); then started=1; break; fi
  echo "local-s3: start attempt $attempt failed" >&2
  bash "$HERE/stop.sh" "$CEPH_DIR"; mkdir -p "$CEPH_DIR"
done
[ -n "$started" ] || { echo "local-s3: could not start Ceph RGW; see the messages above" >&2; exit 1; }
eval "$vars"

export AWS_ENDPOINT_URL_S3=$RGW_ENDPOINT
export AWS_ACCESS_KEY_ID=${RGW_ACCESS_KEY:-TESTACCESSKEY}
export AWS_SECRET_ACCESS_KEY=${RGW_SECRET_KEY:-TESTSECRETKEY0123456789}
export AWS_REGION=us-east-1
unset AWS_SESSION_TOKEN AWS_PROFILE
bucket=${LISA_TEST_BUCKET:-lisa-test}
AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED=true node "$HERE/make-bucket.mjs" "$bucket"
export LISA_TEST_S3="s3://$bucket/"
echo "local-s3: Ceph RGW at $RGW_ENDPOINT, bucket $bucket ready in $(( $(now_ms) - t0 )) ms" >&2

set +e
"$@" <&0 &
child=$!
wait "$child"
rc=$?
child=
exit "$rc"
