#!/usr/bin/env bash
# A CI machine that starts empty (issue: registries): a fresh store builds a 3-stage
# Dockerfile whose base image lives in a local registry, once cold and once with
# `--cache-from` a registry cache another store exported with `--cache-to ... mode=max`.
# BuildKit side by side when dockerd runs: inline cache pushed with the image, then a
# fresh daemon state (builder cache and images removed) builds with `--cache-from`.
#
#   bash bench/remote_cache.sh        (run as root; needs docker-registry and skopeo)
source "$(dirname "$0")/lib/common.sh"

work=$(mktemp -d /tmp/kiln-bench-rcache.XXXXXX)
registry_pid=""
cleanup() {
  status=$?
  [ -n "$registry_pid" ] && kill "$registry_pid" 2>/dev/null
  if [ $status -eq 0 ] && [ -z "${KEEP:-}" ]; then rm -rf "$work"; else echo "work dir kept: $work" >&2; fi
}
trap cleanup EXIT
log=$work/log
build_kiln
busybox_rootfs_tar "$work"

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
reg=127.0.0.1:$port
cat > "$work/registry.yml" <<YML
version: 0.1
storage:
  filesystem:
    rootdirectory: $work/registry-data
  delete:
    enabled: true
http:
  addr: $reg
YML
docker-registry serve "$work/registry.yml" >>"$log" 2>&1 &
registry_pid=$!
for _ in $(seq 1 50); do curl -fs "http://$reg/v2/" >/dev/null && break; sleep 0.1; done

# The base image goes into the registry the way any client would put it there.
seed=$work/seed-store
"$kiln" --root "$seed" import "$work/rootfs.tar" busybox:latest >>"$log"
"$kiln" --root "$seed" save -o "$work/busybox.tar" busybox:latest >>"$log" 2>&1 ||
  "$kiln" --root "$seed" save busybox:latest > "$work/busybox.tar"
skopeo copy -q --dest-tls-verify=false "docker-archive:$work/busybox.tar" "docker://$reg/busybox:latest" >>"$log" 2>&1

ctx=$work/ctx
mkdir -p "$ctx/src"
for i in $(seq 1 50); do head -c 20000 /dev/urandom > "$ctx/src/f$i"; done
cat > "$ctx/Dockerfile" <<DF
FROM $reg/busybox:latest AS deps
RUN sleep 1 && dd if=/dev/urandom of=/deps.bin bs=1M count=24 2>/dev/null
FROM deps AS build
COPY src /src
RUN sleep 1 && cat /src/* > /app.bin && dd if=/dev/urandom of=/tool.bin bs=1M count=8 2>/dev/null
FROM $reg/busybox:latest
COPY --from=deps /deps.bin /app/deps.bin
COPY --from=build /app.bin /app/app.bin
RUN sleep 1 && echo ready > /app/ready
DF

cold=$(time_ms "$kiln" --root "$work/cold" build --progress=plain -t app:cold "$ctx")
"$kiln" --root "$work/a" build --progress=plain -t app:a --metadata-file "$work/a.json" \
  --cache-to "type=registry,ref=$reg/cache:main,mode=max" "$ctx" >>"$log" 2>&1
median() { printf '%s\n' "$@" | sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
runs=()
for i in 1 2 3 4 5; do
  rm -rf "$work/b"
  runs+=("$(time_ms "$kiln" --root "$work/b" build --progress=plain -t app:b --metadata-file "$work/b.json" \
    --cache-from "type=registry,ref=$reg/cache:main" "$ctx")")
done
warm=$(median "${runs[@]}")
meta_digest() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["containerimage.digest"])' "$1"; }
digest_a=$(meta_digest "$work/a.json")
digest_b=$(meta_digest "$work/b.json")
blobs_b=$(ls "$work/b/blobs/sha256" | wc -l)
printf 'kiln: cold %6s ms   fresh store from registry cache: median %6s ms of %s (%sx faster)   blobs in fresh store: %s\n' \
  "$cold" "$warm" "${runs[*]}" "$(awk "BEGIN { printf \"%.1f\", $cold / ($warm > 0 ? $warm : 1) }")" "$blobs_b"
echo "kiln: image digests A=$digest_a B=$digest_b"

if docker_available; then
  docker rmi -f "$reg/bk:inline" "$reg/busybox:latest" >>"$log" 2>&1 || true
  docker builder prune -af >>"$log" 2>&1
  docker build --build-arg BUILDKIT_INLINE_CACHE=1 -t "$reg/bk:inline" "$ctx" >>"$log" 2>&1
  docker push "$reg/bk:inline" >>"$log" 2>&1
  docker rmi -f "$reg/bk:inline" "$reg/busybox:latest" >>"$log" 2>&1 || true
  docker builder prune -af >>"$log" 2>&1
  bk_runs=()
  for i in 1 2 3 4 5; do
    docker rmi -f bk:fresh "$reg/bk:inline" "$reg/busybox:latest" >>"$log" 2>&1 || true
    docker builder prune -af >>"$log" 2>&1
    bk_runs+=("$(time_ms docker build --cache-from "$reg/bk:inline" -t bk:fresh "$ctx")")
  done
  bk=$(median "${bk_runs[@]}")
  printf 'BuildKit: fresh state from inline cache: median %6s ms of %s   kiln is %sx faster\n' "$bk" "${bk_runs[*]}" \
    "$(awk "BEGIN { printf \"%.1f\", $bk / ($warm > 0 ? $warm : 1) }")"
  docker rmi -f bk:fresh >>"$log" 2>&1 || true
fi
