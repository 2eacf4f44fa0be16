#!/usr/bin/env bash
# Cold build of a seed-style fan-out Dockerfile: one base stage, 16 parallel test stages,
# a collect stage copying from all of them. Compares kiln's wall time with the critical
# path of the RUN work (base + one test + collect) and, when dockerd runs, with BuildKit.
#
#   bash bench/fanout.sh [TEST_SECONDS]        (run as root)
source "$(dirname "$0")/lib/common.sh"

test_seconds=${1:-2}
base_seconds=1
work=$(mktemp -d /tmp/kiln-bench-fanout.XXXXXX)
trap 'status=$?; [ $status -eq 0 ] && rm -rf "$work" || echo "bench failed; log kept in $work/log" >&2' EXIT
log=$work/log
build_kiln
busybox_rootfs_tar "$work"

ctx=$work/ctx
mkdir -p "$ctx"
{
  echo "FROM busybox AS base"
  echo "RUN sleep $base_seconds && echo base > /base"
  for i in $(seq 1 16); do
    echo "FROM base AS test$i"
    echo "RUN sleep $test_seconds && echo $i > /result"
  done
  echo "FROM busybox AS collect"
  for i in $(seq 1 16); do
    echo "COPY --from=test$i /result /results/$i"
  done
} > "$ctx/Dockerfile"

critical_ms=$(( (base_seconds + test_seconds) * 1000 ))

store=$work/store
"$kiln" --root "$store" import "$work/rootfs.tar" busybox:latest >>"$log"
cold_ms=$(time_ms "$kiln" --root "$store" build --progress=plain --max-parallelism 16 "$ctx")
store2=$work/store2
"$kiln" --root "$store2" import "$work/rootfs.tar" busybox:latest >>"$log"
cold_default_ms=$(time_ms "$kiln" --root "$store2" build --progress=plain "$ctx")

echo "fan-out cold build (16 test stages, RUN sleep $test_seconds; base RUN sleep $base_seconds)"
echo "  critical path of the RUN work:        ${critical_ms} ms"
printf '  kiln --max-parallelism 16:            %s ms (%s x critical path)\n' "$cold_ms" \
  "$(awk "BEGIN { printf \"%.2f\", $cold_ms / $critical_ms }")"
printf '  kiln default parallelism (%s cores):  %s ms\n' "$(nproc)" "$cold_default_ms"

if docker_available; then
  docker import "$work/rootfs.tar" busybox:latest >>"$log"
  docker builder prune -af >>"$log" 2>&1 || true
  bk_ms=$(time_ms env DOCKER_BUILDKIT=1 docker build --no-cache -q "$ctx")
  printf '  BuildKit (docker build):              %s ms (%s x critical path)\n' "$bk_ms" \
    "$(awk "BEGIN { printf \"%.2f\", $bk_ms / $critical_ms }")"
else
  echo "  BuildKit: skipped (no docker daemon running)"
fi
