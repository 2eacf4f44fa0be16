#!/usr/bin/env bash
# README command (a): install, build kiln, and run its main job on the bundled example.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
[ -x "$HOME/.cargo/bin/cargo" ] && export PATH="$HOME/.cargo/bin:$PATH"

cargo build --release --locked -p kiln
kiln=target/release/kiln
example=examples/platform

echo "== kiln bake --list=targets ($example)"
"$kiln" bake -f "$example/docker-bake.hcl" --list=targets
echo
echo "== kiln bake --print ($example)"
"$kiln" bake -f "$example/docker-bake.hcl" --print
for dockerfile in "$example"/*/Dockerfile "$example"/*/*/Dockerfile; do
  [ -f "$dockerfile" ] || continue
  echo
  echo "== kiln build --call=targets -f $dockerfile"
  "$kiln" build --call=targets -f "$dockerfile" "$(dirname "$dockerfile")"
done
echo
echo "quickstart: kiln resolved the example's bake graph and every Dockerfile's stages."
echo "quickstart: building images needs the engine (issue 'Engine'); this version stops here."
