#!/usr/bin/env bash
# Builds the release archive dist/installer-<version>-<arch>.tar.gz for this machine's
# architecture and prints its path. Unpacked anywhere, it runs as is:
#
#   installer-<version>-<arch>/
#     bin/installer                                   the controller (release build)
#     lib/installer/installer-agent-<arch>            the static agent, found by bin/installer
#     share/bash-completion/completions/installer     shell completions
#     share/zsh/site-functions/_installer
#     share/fish/vendor_completions.d/installer.fish
#     README.md
set -euo pipefail
cd "$(dirname "$0")/.."
arch=$(uname -m)
cargo build -q -p installer --release >&2
exe=target/release/installer
version=$("$exe" --version | awk '{print $2}')
if [ -z "$version" ]; then
  echo "dist: could not read the version from $exe --version" >&2
  exit 1
fi
agents=$(scripts/build-agent.sh)

name="installer-$version-$arch"
stage=$(mktemp -d "${TMPDIR:-/tmp}/installer-dist.XXXXXX")
trap 'rm -rf "$stage"' EXIT
root="$stage/$name"
install -d "$root/bin" "$root/lib/installer" \
  "$root/share/bash-completion/completions" "$root/share/zsh/site-functions" \
  "$root/share/fish/vendor_completions.d"
install -m 0755 "$exe" "$root/bin/installer"
install -m 0755 "$agents/installer-agent-$arch" "$root/lib/installer/installer-agent-$arch"
"$exe" completion bash >"$root/share/bash-completion/completions/installer"
"$exe" completion zsh >"$root/share/zsh/site-functions/_installer"
"$exe" completion fish >"$root/share/fish/vendor_completions.d/installer.fish"
install -m 0644 README.md "$root/README.md"

# The same sources give the same archive: fixed order, owner and times (the commit's).
mtime=$(git log -1 --format=%ct 2>/dev/null || echo 0)
mkdir -p dist
out="dist/$name.tar.gz"
tar -C "$stage" --sort=name --owner=0 --group=0 --numeric-owner --mtime="@$mtime" \
  -cf - "$name" | gzip -n >"$out.tmp"
mv -f "$out.tmp" "$out"

# Both programs run from an unpacked copy elsewhere; bin/installer looks for its agents in
# bin/../lib/installer.
check=$(mktemp -d "${TMPDIR:-/tmp}/installer-dist-check.XXXXXX")
trap 'rm -rf "$stage" "$check"' EXIT
tar -C "$check" -xzf "$out"
"$check/$name/bin/installer" --version >/dev/null
"$check/$name/lib/installer/installer-agent-$arch" --version >/dev/null
echo "$(pwd)/$out"
