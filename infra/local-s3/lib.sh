# Helpers shared by start.sh / stop.sh / with-s3.sh (sourced, not run).

CEPH_PACKAGES=(ceph-mon ceph-osd radosgw ceph-common)
CEPH_COMMANDS=(ceph-mon ceph-osd radosgw radosgw-admin ceph ceph-authtool monmaptool)

now_ms() { date +%s%3N; }

missing_ceph_commands() {
  local c missing=()
  for c in "${CEPH_COMMANDS[@]}"; do command -v "$c" >/dev/null 2>&1 || missing+=("$c"); done
  echo "${missing[*]}"
}

# A fresh CI machine has no Ceph: install it when we may (root + apt), otherwise say how.
ensure_ceph_installed() {
  local missing; missing=$(missing_ceph_commands)
  [ -z "$missing" ] && return 0
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "local-s3: $missing not found; installing ${CEPH_PACKAGES[*]} with apt-get" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq --no-install-recommends "${CEPH_PACKAGES[@]}" >&2
    missing=$(missing_ceph_commands)
    [ -z "$missing" ] && return 0
  fi
  {
    echo "local-s3: the tests need a local S3 server (Ceph RGW) but these commands are missing: $missing"
    echo "  install them:  sudo apt-get update && sudo apt-get install -y --no-install-recommends ${CEPH_PACKAGES[*]}"
    echo "  or point the tests at an existing S3 endpoint: LISA_TEST_S3=s3://bucket/prefix/ AWS_ENDPOINT_URL_S3=http://host:port"
  } >&2
  return 1
}

# Ask the kernel for an unused loopback port (bind to 0). Another process could take it before the
# daemon binds; callers detect that as a failed start.
free_port() {
  node -e "const s=require('net').createServer();s.listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})"
}

# Wait until an HTTP server on 127.0.0.1:$1 answers a request with a status line, up to $2 tenths
# of a second. Pure bash so a CI image needs no curl.
wait_http() {
  local port=$1 tries=$2 i line
  for ((i = 0; i < tries; i++)); do
    # braces scope the 2>/dev/null to the attempt; a bare `exec ... 2>` would silence the shell
    if { exec 3<>"/dev/tcp/127.0.0.1/$port"; } 2>/dev/null; then
      printf 'GET / HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' >&3
      line=$(head -c 12 <&3 || true)
      exec 3<&- 3>&-
      [[ $line == HTTP/1.* ]] && return 0
    fi
    sleep 0.1
  done
  return 1
}
