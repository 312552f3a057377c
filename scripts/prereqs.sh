#!/usr/bin/env bash
# Installs what building and testing installer needs on a Debian/Ubuntu machine that already
# has Rust and Docker, and makes sure a Docker engine answers. Idempotent: a warm machine
# spends a second here. Needs root (or sudo) only when something is missing.
set -euo pipefail

# Debian packages the tests use, by the command they provide:
#   mmdebstrap      builds the test node image from Debian packages (no image pulls)
#   openssh-server  the real sshd the SSH tests start on loopback
#   openssh-client  ssh-keygen, ssh-agent, ssh-add, ssh (test helpers)
#   sudo            non-root test users on the loopback sshd
#   iproute2        network namespaces for the connect-timeout test
#   vagrant         `vagrant validate` and the docker-provider end-to-end test
#   curl            the demo's "registry answers" check
#   rsync, zstd     the distribution benchmark's baselines (tc comes with iproute2)
PACKAGES=(mmdebstrap openssh-server openssh-client sudo iproute2 curl ca-certificates rsync zstd)
VAGRANT=(vagrant)

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    echo "prereqs: need root to run: $*" >&2; exit 1; fi
}

missing=()
for pkg in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
vagrant_missing=()
dpkg-query -W -f='${Status}' vagrant 2>/dev/null | grep -q "install ok installed" || vagrant_missing=("${VAGRANT[@]}")

if [ ${#missing[@]} -gt 0 ] || [ ${#vagrant_missing[@]} -gt 0 ]; then
  echo "prereqs: installing ${missing[*]} ${vagrant_missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  as_root apt-get update -qq
  [ ${#missing[@]} -eq 0 ] || as_root apt-get install -y -qq "${missing[@]}" >/dev/null
  # Vagrant's recommends pull in libvirt, a kernel and NFS; the docker provider needs none.
  [ ${#vagrant_missing[@]} -eq 0 ] || as_root apt-get install -y -qq --no-install-recommends "${vagrant_missing[@]}" >/dev/null
fi

# A Docker engine: use the one that answers; otherwise start an installed dockerd.
if ! docker info >/dev/null 2>&1; then
  if ! command -v dockerd >/dev/null; then
    echo "prereqs: no Docker engine answers and dockerd is not installed; install Docker (e.g. apt-get install docker.io) and start it" >&2
    exit 1
  fi
  echo "prereqs: starting dockerd" >&2
  as_root sh -c 'nohup dockerd >/var/log/dockerd-installer-tests.log 2>&1 &'
  for _ in $(seq 1 60); do docker info >/dev/null 2>&1 && break; sleep 1; done
  docker info >/dev/null 2>&1 || { echo "prereqs: dockerd did not come up; see /var/log/dockerd-installer-tests.log" >&2; exit 1; }
fi
