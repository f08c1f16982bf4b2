#!/usr/bin/env bash
# Runs the whole test suite: unit, golden, property and integration tests, doc tests,
# and the interop tests that drive the gateway with the official SDKs, botocore, a real
# Envoy and Redis. Installs what those need (a Python venv, Redis) on first use.
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"

# Test binaries embed their crate's directory at compile time (`env!("CARGO_MANIFEST_DIR")`
# for fixtures and goldens), and cargo does not rebuild a workspace crate when only the
# checkout moved. A target dir shared by two checkouts would run one checkout's tests
# against the other's fixtures, so a move rebuilds the workspace crates (not the deps).
root_mark="$CARGO_TARGET_DIR/.workspace-root"
if [ -f "$root_mark" ] && [ "$(cat "$root_mark")" != "$PWD" ]; then
  echo "==> $CARGO_TARGET_DIR was last built from $(cat "$root_mark"): rebuilding the workspace crates"
  # shellcheck disable=SC2046 # one `-p name` pair per workspace package
  cargo clean --quiet $(cargo metadata --no-deps --format-version 1 --locked |
    python3 -c 'import json, sys; print(" ".join("-p " + p["name"] for p in json.load(sys.stdin)["packages"]))')
fi
mkdir -p "$CARGO_TARGET_DIR"
printf '%s\n' "$PWD" > "$root_mark"
venv="${AIGW_VENV:-$CARGO_TARGET_DIR/test-venv}"
req=scripts/requirements-test.txt

if [ ! -x "$venv/bin/python" ] || ! cmp -s "$req" "$venv/.requirements"; then
  echo "==> installing test tools into $venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$req"
  cp "$req" "$venv/.requirements"
fi

if ! command -v redis-server >/dev/null 2>&1; then
  echo "==> installing redis-server"
  if [ "$(id -u)" = 0 ]; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server) >/dev/null
  else
    echo "redis-server is missing: install it (apt-get install redis-server)" >&2
    exit 1
  fi
fi

# A real browser for the admin console test: Debian's Chromium and its chromedriver.
if ! command -v chromedriver >/dev/null 2>&1 || ! command -v chromium >/dev/null 2>&1; then
  echo "==> installing chromium and chromium-driver"
  if [ "$(id -u)" = 0 ]; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver) >/dev/null
  else
    echo "chromium is missing: install it (apt-get install chromium chromium-driver)" >&2
    exit 1
  fi
fi

npm_dir="$CARGO_TARGET_DIR/npm"
if [ ! -f "$npm_dir/node_modules/oauth2-mock-server/package.json" ]; then
  echo "==> installing oauth2-mock-server into $npm_dir"
  npm install --silent --no-audit --no-fund --prefix "$npm_dir" oauth2-mock-server@8 >/dev/null
fi

# Claude Code, the agent CLI the Anthropic-dialect end-to-end test drives (its native
# binary comes in the platform package npm picks; no network is used at test time).
claude_version=2.1.332
claude_dir="$CARGO_TARGET_DIR/npm-claude-code"
if ! "$claude_dir/node_modules/.bin/claude" --version 2>/dev/null | grep -q "^$claude_version "; then
  echo "==> installing @anthropic-ai/claude-code@$claude_version into $claude_dir"
  npm install --silent --no-audit --no-fund --prefix "$claude_dir" \
    "@anthropic-ai/claude-code@$claude_version" >/dev/null
fi

# Codex CLI (speaks only the OpenAI Responses API) for the Responses end-to-end tests.
codex_version=0.171.0
if ! grep -qs "\"version\": \"$codex_version\"" "$npm_dir/node_modules/@openai/codex/package.json"; then
  echo "==> installing @openai/codex@$codex_version into $npm_dir"
  npm install --silent --no-audit --no-fund --prefix "$npm_dir" "@openai/codex@$codex_version" >/dev/null
fi

# Integration tests find their external peers through these; with AIGW_REQUIRE_EXTERNAL
# set, a test whose peer is missing fails instead of skipping.
export AIGW_PYTHON="$venv/bin/python"
export AIGW_VENV_BIN="$venv/bin"
export AIGW_NPM_DIR="$npm_dir"
export AIGW_CLAUDE="$claude_dir/node_modules/.bin/claude"
export AIGW_REQUIRE_EXTERNAL=1
export PATH="$venv/bin:$PATH"

echo "==> crate graph and module cycles"
bash scripts/check-deps.sh
python3 scripts/check-cycles.py aigw-core aigw-providers aigw-auth aigw-axum aigw-extproc aigw-operator

# cargo-nextest runs every test in its own process (tests that set a global tracing
# subscriber or environment never meet). A machine without it gets it installed, pinned,
# under the target dir; where that is impossible (no registry), `cargo test` runs the
# same targets, one test thread per binary for the same isolation from shared state.
nextest_version=0.9.143
if ! cargo nextest --version >/dev/null 2>&1; then
  tools="$CARGO_TARGET_DIR/tools"
  if [ ! -x "$tools/bin/cargo-nextest" ]; then
    echo "==> installing cargo-nextest $nextest_version into $tools"
    cargo install --quiet --locked --root "$tools" "cargo-nextest@$nextest_version" || true
  fi
  export PATH="$tools/bin:$PATH"
fi
if cargo nextest --version >/dev/null 2>&1; then
  echo "==> cargo nextest"
  cargo nextest run --workspace --all-targets --no-fail-fast
else
  echo "==> cargo test (cargo-nextest unavailable)"
  cargo test --workspace --all-targets --no-fail-fast -- --test-threads=1
fi
echo "==> doc tests"
cargo test --workspace --doc --quiet

# The container images, from the binaries the tests just built (stripped, so no release
# build is added to CI time): each binary started in its staged root as uid 65532, then
# each image's config checked (user, entrypoint, ports, labels). Debian's podman builds
# images here; running containers does not work on these machines.
if ! command -v podman >/dev/null 2>&1; then
  echo "==> installing podman"
  if [ "$(id -u)" = 0 ]; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq podman) >/dev/null
  else
    echo "podman is missing: install it (apt-get install podman)" >&2
    exit 1
  fi
fi
echo "==> container images (podman, test build's binaries)"
PROFILE=debug AIGW_SKIP_CARGO=1 bash scripts/build-images.sh ci
