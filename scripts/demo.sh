#!/usr/bin/env bash
# The main job, end to end on this machine: three systemd+sshd container hosts, a realistic
# rootfs built from Debian packages, and a real `installer apply` against them; then shows
# the result (the table, containerd active, the registry answering from every host).
# The hosts stay up for you to look at; the last lines print how to undo the apply and how
# to remove the hosts, as commands that work from any directory.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
scripts/prereqs.sh
cargo build -q -p installer -p testenv
# Into target/agents, where target/debug/installer looks without being told.
scripts/build-agent.sh >/dev/null
work=.testenv/demo
mkdir -p "$work"
echo "==> building the fixture rootfs (Debian packages, cached after the first run)"
target/debug/testenv rootfs "$work/rootfs"
echo "==> starting 3 hosts"
target/debug/testenv down --name demo >/dev/null 2>&1 || true
target/debug/testenv up -n 3 --name demo --rootfs "$(pwd)/$work/rootfs" --workdir "$(pwd)/$work/hosts"
echo "==> installer apply"
target/debug/installer apply -f "$work/hosts/Clusterfile" --known-hosts "$work/hosts/known_hosts"
echo "==> on every host: containerd, and the registry through /etc/hosts"
for node in 1 2 3; do
  c=testenv-demo-node$node
  printf '%s: containerd %s, ' "$c" "$(docker exec "$c" systemctl is-active containerd)"
  printf 'GET https://sea.hub:5000/v2/ (verified with the cluster CA) -> %s\n' "$(docker exec "$c" curl -s -o /dev/null -w '%{http_code}' --cacert /etc/docker/certs.d/sea.hub:5000/ca.crt https://sea.hub:5000/v2/)"
done
hosts="$root/$work/hosts"
echo "==> done. Undo the apply with:"
printf '  %q clean -f %q --known-hosts %q\n' \
  "$root/target/debug/installer" "$hosts/Clusterfile" "$hosts/known_hosts"
echo "    and remove the hosts with:"
printf '  %q down --name demo\n' "$root/target/debug/testenv"
