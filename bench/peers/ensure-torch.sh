#!/usr/bin/env bash
# ensure-torch.sh: the peer of bench/peers/ is Debian's PyTorch on OpenBLAS. Installs
# python3-torch and libopenblas0-pthread with apt-get when missing (as root), or says how.
# Without OpenBLAS, Debian's torch runs on the reference BLAS (~17x slower): not a peer.
set -euo pipefail
PACKAGES=(python3-torch libopenblas0-pthread)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "peers: installing ${missing[*]} with apt-get" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
  else
    echo "peers: the PyTorch peer needs Debian packages ${missing[*]}: sudo apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
fi
/usr/bin/python3 -c 'import torch' || { echo "peers: /usr/bin/python3 cannot import torch" >&2; exit 1; }
