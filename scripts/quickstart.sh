#!/usr/bin/env bash
# README command (a): install, build kiln, and run its main job on the bundled example:
# `kiln bake` of examples/platform (a base image, two runtimes, three services linked by
# target: contexts), built offline from Debian's busybox-static, then the images listed.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
[ -x "$HOME/.cargo/bin/cargo" ] && export PATH="$HOME/.cargo/bin:$PATH"

cargo build --release --locked -p kiln
kiln=${CARGO_TARGET_DIR:-$PWD/target}/release/kiln

cd examples/platform
echo "== kiln bake --list=targets"
"$kiln" bake --list=targets
echo
echo "== kiln bake (examples/platform)"
"$kiln" bake --progress=plain
echo
echo "== kiln images"
"$kiln" images
echo
echo "== a second kiln bake: nothing changed"
time "$kiln" bake --progress=quiet
