#!/usr/bin/env bash
# Installs what kiln needs on a fresh Debian machine (run as root). Pass --test to add what
# the test suite needs (real registry, skopeo, umoci). Idempotent.
set -euo pipefail

want_test=0
[ "${1:-}" = "--test" ] && want_test=1

if [ "$(id -u)" -ne 0 ]; then
  echo "setup.sh: run as root (it installs Debian packages with apt-get)" >&2
  exit 1
fi

packages=(runc busybox-static ca-certificates pkg-config gcc make)
if [ "$want_test" -eq 1 ]; then
  packages+=(skopeo umoci docker-registry apache2-utils sqlite3 hyperfine)
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup.sh: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if ! command -v cargo >/dev/null 2>&1; then
  for dir in "$HOME/.cargo/bin" /root/.cargo/bin; do
    [ -x "$dir/cargo" ] && export PATH="$dir:$PATH"
  done
fi
if ! command -v cargo >/dev/null 2>&1; then
  echo "setup.sh: no Rust toolchain found; kiln needs cargo and rustc >= 1.95 on PATH" >&2
  exit 1
fi
