#!/usr/bin/env bash
# Runs every test of installer: formatting, lints, the static agent build, and the whole
# workspace suite — unit and golden-file tests, the agent against fixture trees, SSH against
# real sshd on systemd+sshd container hosts, the end-to-end runs on those hosts, and Vagrant
# (docker provider). `--all-features` turns on `real-hosts`, which builds the suites that need
# Docker, sshd or Vagrant; plain `cargo test` runs the hermetic ones only.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/prereqs.sh
cargo fmt --all -- --check
cargo clippy -q --workspace --all-targets --all-features -- -D warnings
INSTALLER_AGENT_DIR=$(scripts/build-agent.sh)
export INSTALLER_AGENT_DIR
cargo test --workspace --all-features
