#!/usr/bin/env bash
# build.sh: builds native/build/lisa_native.node, the optional native kernels of core/engine/native.ts
# (OpenBLAS's GEMM and fused kernels, all on the wasm heap in place).
#
# Needs a C compiler, Node's own headers (include/node next to the node binary, as Node's
# tarballs and Docker images ship them) and Debian's libopenblas0 (any variant). As root with
# apt-get it installs gcc, libc6-dev and libopenblas0-pthread when they are missing, as the S3
# tests install Ceph. When a prerequisite is still missing it says so and exits 0: lisa-fn then
# runs every product on its wasm GEMM (the engine logs why), and the native tests skip, or fail
# under CI=true. A compile error exits 1. Up to date (output newer than its sources): no work.
# The addon uses Node-API 8, so one build serves Node 20 and 22.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
OUT=$HERE/build/lisa_native.node
SOURCES=("$HERE"/*.c "$HERE"/*.h "${BASH_SOURCE[0]}")
PACKAGES=(gcc libc6-dev libopenblas0-pthread)

up_to_date() {
  local f
  [ -f "$OUT" ] || return 1
  for f in "${SOURCES[@]}"; do [ "$OUT" -nt "$f" ] || return 1; done
}
up_to_date && exit 0

NODE_INCLUDE=$(node -p "require('node:path').resolve(process.execPath, '../../include/node')")
have_openblas() { ldconfig -p 2>/dev/null | grep 'libopenblas\.so\.0 ' >/dev/null; }  # grep -q would SIGPIPE ldconfig under pipefail
missing() {
  local m=()
  command -v cc >/dev/null 2>&1 || m+=("a C compiler (cc)")
  [ -f /usr/include/stdio.h ] || m+=("the C library headers")
  have_openblas || m+=("libopenblas.so.0")
  echo "${m[*]:-}"
}

if [ -n "$(missing)" ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "native: missing $(missing); installing ${PACKAGES[*]} with apt-get" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq --no-install-recommends "${PACKAGES[@]}" >&2
fi
why=$(missing)
[ -f "$NODE_INCLUDE/node_api.h" ] || why="${why:+$why, }Node's headers ($NODE_INCLUDE/node_api.h)"
if [ -n "$why" ]; then
  echo "native: not building the OpenBLAS GEMM (missing: $why); lisa-fn uses its wasm GEMM." >&2
  echo "  to build it: sudo apt-get install -y ${PACKAGES[*]} && npm run build:native" >&2
  exit 0
fi

mkdir -p "$HERE/build"
tmp=$(mktemp "$HERE/build/.lisa_native.XXXXXX")
trap 'rm -f "$tmp"' EXIT
# -ffp-contract=off: no fused multiply-adds, so the kernels round as tfjs's ops do (bitwise
# equal to the reference compositions); -fno-math-errno and -fno-trapping-math (no errno, no FP
# exception flags: results unchanged) let sqrt and the selects of exp vectorise.
cc -std=c11 -O3 -ffp-contract=off -fno-math-errno -fno-trapping-math -fPIC -shared -Wall -Wextra -Werror -I"$NODE_INCLUDE" -o "$tmp" "$HERE"/*.c -l:libopenblas.so.0 -lm
chmod 755 "$tmp"
mv "$tmp" "$OUT"
echo "native: built $OUT" >&2
