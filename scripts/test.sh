#!/usr/bin/env bash
# README command (b): install what the tests need and run the whole suite.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh --test
[ -x "$HOME/.cargo/bin/cargo" ] && export PATH="$HOME/.cargo/bin:$PATH"

if [ ! -d ../shared/conformance ] && [ -z "${KILN_SHARED_DIR:-}" ]; then
  echo "test.sh: ../shared/conformance is missing (set KILN_SHARED_DIR to the shared/ folder)" >&2
  exit 1
fi

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== cargo test"
cargo test --workspace --locked --no-fail-fast 2>&1 | tee /tmp/kiln-test.log
