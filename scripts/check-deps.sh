#!/usr/bin/env bash
# Keeps the crate graph's shape (docs/architecture.md): adapters depend on the core
# crates and never on each other; an embedder's `aigw-axum` (default features off)
# builds without the binary's command line, log output, Redis client and simulator;
# `aigw-core` with default features pulls no HTTP, gRPC, Redis or async runtime crate.
# Normal dependencies only (dev-dependencies may cross: cross-packaging tests).
set -euo pipefail
cd "$(dirname "$0")/.."

failed=0

# Package names in the normal-dependency tree of the given selection.
packages() {
  cargo tree --locked -e normal --prefix none --format '{p}' "$@" | cut -d' ' -f1 | sort -u
}

# check LABEL "FORBIDDEN…" CARGO-TREE-ARGS…
check() {
  local label=$1 forbidden=$2
  shift 2
  local names
  names=$(packages "$@")
  for f in $forbidden; do
    if grep -qx -- "$f" <<<"$names"; then
      echo "check-deps: $label depends on $f (cargo tree $*)" >&2
      cargo tree --locked -e normal -i "$f" "$@" >&2 || true
      failed=1
    fi
  done
}

adapters="aigw-axum aigw-extproc aigw-operator"
for a in $adapters; do
  check "$a" "$(tr ' ' '\n' <<<"$adapters" | grep -vx "$a" | tr '\n' ' ')" -p "$a"
done
check "aigw-axum without default features" "clap tracing-subscriber redis tonic envoy-types" \
  -p aigw-axum --no-default-features
check "aigw-core" "hyper reqwest redis tonic tokio axum kube" -p aigw-core
for c in aigw-providers aigw-auth; do
  check "$c" "$adapters" -p "$c"
done

if [ "$failed" = 0 ]; then
  echo "check-deps: crate graph ok"
fi
exit "$failed"
