#!/usr/bin/env bash
# A 30-image bake graph: one base (busybox + RUN), 4 language bases on it and 25 services,
# each on one language base through `target:` contexts, with its own sources, a COPY and a
# short RUN. Measures kiln bake cold (--max-parallelism 4 and default), no-op (median of
# 5) and after one service's file changed (checking only that service re-ran); when dockerd
# runs, the same 30 images with Make sentinels + `docker build` (make -j4) side by side.
#
#   bash bench/bake30.sh        (run as root; KILN_BIN=PATH skips the release build)
source "$(dirname "$0")/lib/common.sh"
source "$(dirname "$0")/lib/bake30.sh"

work=$(mktemp -d /tmp/kiln-bench-bake30.XXXXXX)
trap 'status=$?; [ $status -eq 0 ] && rm -rf "$work" || echo "bench failed; log kept in $work/log" >&2' EXIT
log=$work/log
if [ -n "${KILN_BIN:-}" ]; then
  kiln=$KILN_BIN   # an already built kiln (e.g. a debug one while working on this script)
else
  # common.sh's build_kiln expects the binary in the repository's own target directory.
  unset CARGO_TARGET_DIR
  build_kiln
fi
busybox_rootfs_tar "$work"

proj=$work/proj
gen_project "$proj"
cd "$proj"

fresh_store() {
  rm -rf "$1"
  "$kiln" --root "$1" import "$work/rootfs.tar" busybox:latest >>"$log"
}

bake() { "$kiln" --root "$store" bake --progress=plain "$@"; }

store=$work/store-default
fresh_store "$store"
cold_default_ms=$(time_ms bake)

store=$work/store
fresh_store "$store"
cold_p4_ms=$(time_ms bake --max-parallelism 4)
built=$("$kiln" --root "$store" images | grep -c '^bench30/' || true)
[ "$built" -eq 30 ] || { echo "expected 30 images, kiln tagged $built" >&2; exit 1; }

noop=()
for _ in 1 2 3 4 5; do noop+=("$(time_ms bake)"); done
noop_ms=$(median "${noop[@]}")
bake >"$work/noop.plain" 2>&1
if grep -q 'cache miss' "$work/noop.plain"; then
  echo "no-op bake missed the cache:" >&2
  grep 'cache miss' "$work/noop.plain" >&2
  exit 1
fi

changed=svc07
echo "// edited" >> "svc/$changed/src/util.txt"
start=$(now_ms)
bake >"$work/change.plain" 2>&1
change_ms=$(( $(now_ms) - start ))
reran=$(rerun_targets "$work/change.plain" | tr '\n' ' ')
if [ "$reran" != "$changed " ]; then
  echo "expected only $changed to re-run, got: ${reran:-nothing}" >&2
  cat "$work/change.plain" >&2
  exit 1
fi
reason=$(grep -m1 'cache miss: file' "$work/change.plain" | sed 's/^#[0-9]* [0-9.]* //')

echo "bake30: 30 images (1 base, 4 language bases, 25 services), $(nproc) cores"
printf '  %-44s %8s\n' "measurement" "ms"
printf '  %-44s %8s\n' "kiln cold, --max-parallelism 4" "$cold_p4_ms"
printf '  %-44s %8s\n' "kiln cold, default parallelism" "$cold_default_ms"
printf '  %-44s %8s   (runs: %s)\n' "kiln no-op, median of 5" "$noop_ms" "${noop[*]}"
printf '  %-44s %8s   (re-ran: %s; %s)\n' "kiln one file changed ($changed)" "$change_ms" "${reran% }" "$reason"

if docker_available; then
  # The Make + docker twin starts from the unchanged sources.
  mk=$work/make
  gen_project "$mk"
  gen_make "$mk"
  docker import "$work/rootfs.tar" busybox:latest >>"$log"
  docker builder prune -af >>"$log" 2>&1 || true
  docker image rm -f $(docker image ls -q 'bench30/*' | sort -u) >>"$log" 2>&1 || true
  mk_cold_ms=$(time_ms make -C "$mk" -j4)
  mk_noop=()
  for _ in 1 2 3 4 5; do mk_noop+=("$(time_ms make -C "$mk" -j4)"); done
  echo "// edited" >> "$mk/svc/$changed/src/util.txt"
  mk_change_ms=$(time_ms make -C "$mk" -j4)
  printf '  %-44s %8s\n' "make -j4 + docker build, cold" "$mk_cold_ms"
  printf '  %-44s %8s   (sentinels: docker not run)\n' "make -j4 + docker build, no-op median of 5" "$(median "${mk_noop[@]}")"
  printf '  %-44s %8s\n' "make -j4 + docker build, one file changed" "$mk_change_ms"
else
  echo "  BuildKit (make -j4 + docker build): skipped (no docker daemon running)"
fi
