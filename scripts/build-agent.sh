#!/usr/bin/env bash
# Builds the static installer-agent for this machine's architecture and places it where the
# controller looks for agent builds: target/agents/installer-agent-<uname -m>. Prints that
# directory. The controller finds it with --agent-dir or INSTALLER_AGENT_DIR.
set -euo pipefail
cd "$(dirname "$0")/.."
arch=$(uname -m)
target="${arch}-unknown-linux-gnu"
# crt-static only for the agent and only with an explicit --target, so proc-macros and build
# scripts (host artifacts) stay dynamic.
RUSTFLAGS="-C target-feature=+crt-static" cargo build -q -p installer-agent --release --target "$target" >&2
out=target/agents
mkdir -p "$out"
install -m 0755 "target/$target/release/installer-agent" "$out/installer-agent-$arch.tmp"
mv -f "$out/installer-agent-$arch.tmp" "$out/installer-agent-$arch"
if ldd "$out/installer-agent-$arch" 2>&1 | grep -q "=>"; then
  echo "build-agent: $out/installer-agent-$arch is not static" >&2
  exit 1
fi
echo "$(pwd)/$out"
