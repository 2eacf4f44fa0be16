#!/usr/bin/env bash
# No-op rebuilds (issue: cache): the fan-out Dockerfile, and a `COPY . .` build over a
# 20,000-file, ~200 MB context; each built once, then rebuilt unchanged 5 times (median),
# then rebuilt after one file of the context changed. BuildKit side by side when dockerd
# runs.
#
#   bash bench/noop.sh        (run as root)
source "$(dirname "$0")/lib/common.sh"

work=$(mktemp -d /tmp/kiln-bench-noop.XXXXXX)
trap 'status=$?; [ $status -eq 0 ] && rm -rf "$work" || echo "bench failed; log kept in $work/log" >&2' EXIT
log=$work/log
build_kiln
busybox_rootfs_tar "$work"

median() { printf '%s\n' "$@" | sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }

fanout=$work/fanout
mkdir -p "$fanout"
{
  echo "FROM busybox AS base"
  echo "RUN echo base > /base"
  for i in $(seq 1 16); do
    echo "FROM base AS test$i"
    echo "RUN echo $i > /result"
  done
  echo "FROM busybox AS collect"
  for i in $(seq 1 16); do echo "COPY --from=test$i /result /results/$i"; done
} > "$fanout/Dockerfile"

big=$work/big
mkdir -p "$big/src"
echo 'FROM busybox' > "$big/Dockerfile"
echo 'COPY . /app' >> "$big/Dockerfile"
echo 'RUN ls -R /app | wc -l > /count' >> "$big/Dockerfile"
# File i (0..19999) holds (i * 7919) mod 20000 + 1 random bytes: 7919 is prime to 20000,
# so the sizes are 1..20000 once each, a mean of 10 KB and 200 MB in all.
for d in $(seq 0 199); do
  mkdir -p "$big/src/d$d"
  for f in $(seq 0 99); do
    head -c $(( (d * 100 + f) * 7919 % 20000 + 1 )) /dev/urandom > "$big/src/d$d/f$f.bin"
  done
done
echo "context: $(find "$big" -type f | wc -l) files, $(du -s --apparent-size --block-size=1000000 "$big" | cut -f1) MB"

store=$work/store
"$kiln" --root "$store" import "$work/rootfs.tar" busybox:latest >>"$log"

for name in fanout big; do
  ctx=$work/$name
  cold=$(time_ms "$kiln" --root "$store" build --progress=plain --max-parallelism 16 "$ctx")
  sleep 1.2 # files written in the last second are re-hashed by design
  runs=()
  for _ in 1 2 3 4 5; do runs+=("$(time_ms "$kiln" --root "$store" build --progress=quiet "$ctx")"); done
  noop=$(median "${runs[@]}")
  changed=""
  if [ "$name" = big ]; then
    echo changed >> "$ctx/src/d7/f7.bin"
    changed=$(time_ms "$kiln" --root "$store" build --progress=plain --explain "$ctx")
  fi
  printf '%-8s kiln: cold %6s ms   no-op median %5s ms (runs: %s)   one file changed %s ms\n' \
    "$name" "$cold" "$noop" "${runs[*]}" "${changed:--}"
  if docker_available; then
    docker image inspect busybox:latest >/dev/null 2>&1 || docker import "$work/rootfs.tar" busybox:latest >>"$log"
    docker build -q "$ctx" >>"$log" 2>&1
    bk=()
    for _ in 1 2 3 4 5; do bk+=("$(time_ms docker build -q "$ctx")"); done
    bk_noop=$(median "${bk[@]}")
    printf '%-8s BuildKit: no-op median %5s ms (runs: %s)   kiln is %sx faster\n' "$name" "$bk_noop" "${bk[*]}" \
      "$(awk "BEGIN { printf \"%.1f\", $bk_noop / ($noop > 0 ? $noop : 1) }")"
  fi
done
grep -E "cache miss" "$log" | sort | uniq -c | head -5
