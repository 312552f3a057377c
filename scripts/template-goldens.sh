#!/usr/bin/env bash
# Regenerates the goldens that proto/tests/templates.rs compares the template engine with:
# what Go's own text/template (Go 1.19, Debian 12's golang-go) renders for
#   proto/tests/templates/go/cases.txt   (hand-written cases)  -> cases.golden.json
#   proto/tests/templates/go/corpus.json (generated templates) -> corpus.golden.json
#   proto/tests/templates/go/undefined.txt (undefined keys in conditions, rendered with Go's
#     default missingkey, as sealer renders) -> undefined.golden.json
# The corpus itself is written by the Rust test's seeded generator, so it is regenerated
# first (REGENERATE_TEMPLATE_CORPUS=1 makes the test write the file instead of checking it).
# Needs Go (apt-get install -y golang-go); plain `cargo test` needs neither Go nor this.
#
# Usage: scripts/template-goldens.sh    (from anywhere in the repository)
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
dir="$root/proto/tests/templates/go"

command -v go >/dev/null || { echo "Go is needed: apt-get install -y golang-go" >&2; exit 1; }

(cd "$root" && REGENERATE_TEMPLATE_CORPUS=1 cargo test -q -p installer-proto --test templates \
    go::corpus::the_corpus_is_what_the_generator_makes -- --exact)

cd "$dir"
# GOFLAGS/GO111MODULE: render.go is a lone file of the standard library, not a module.
export GO111MODULE=off GOFLAGS= GOCACHE="${GOCACHE:-${TMPDIR:-/tmp}/template-goldens-gocache}"
go run render.go -env env.txt -cases cases.txt > cases.golden.json.new
mv cases.golden.json.new cases.golden.json
go run render.go -env env.txt -corpus corpus.json > corpus.golden.json.new
mv corpus.golden.json.new corpus.golden.json
go run render.go -env env.txt -missingkey default -cases undefined.txt > undefined.golden.json.new
mv undefined.golden.json.new undefined.golden.json
echo "goldens written in $dir (go $(go env GOVERSION))"
