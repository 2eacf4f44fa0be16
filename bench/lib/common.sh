# Shared pieces of kiln's shell benchmarks: a release kiln, a busybox base image in a
# fresh store, timing in milliseconds, and a peer docker daemon when one is running.

set -euo pipefail
bench_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
repo_root=$(cd "$bench_root/.." && pwd)

build_kiln() {
  (cd "$repo_root" && cargo build --release -p kiln >"${log:-/dev/null}" 2>&1)
  kiln="${CARGO_TARGET_DIR:-$repo_root/target}/release/kiln"
}

# busybox_rootfs_tar DIR: writes DIR/rootfs.tar from Debian's busybox-static.
busybox_rootfs_tar() {
  local dir=$1 rootfs=$1/rootfs
  mkdir -p "$rootfs/bin" "$rootfs/etc" "$rootfs/tmp"
  cp /bin/busybox "$rootfs/bin/busybox"
  for applet in $("$rootfs/bin/busybox" --list); do
    [ "$applet" = busybox ] || ln -sf busybox "$rootfs/bin/$applet"
  done
  printf 'root:x:0:0:root:/root:/bin/sh\n' > "$rootfs/etc/passwd"
  printf 'root:x:0:\n' > "$rootfs/etc/group"
  tar -C "$rootfs" -cf "$dir/rootfs.tar" .
}

# Clock readings from bash's EPOCHREALTIME: no process is started, so a few-ms command is
# not timed together with two `date` runs.
now_us() { local t=${EPOCHREALTIME/[.,]/}; echo "$t"; }
now_ms() { echo $(( $(now_us) / 1000 )); }

# time_ms CMD...: runs CMD, prints its wall time in ms to 0.1 ms (output of CMD goes to $log).
time_ms() {
  local start end us
  start=${EPOCHREALTIME/[.,]/}
  "$@" >>"${log:-/dev/null}" 2>&1
  end=${EPOCHREALTIME/[.,]/}
  us=$((end - start))
  printf '%d.%d\n' $((us / 1000)) $((us % 1000 / 100))
}

# The peer: Debian's docker.io client drives its daemon's embedded BuildKit.
if [ -x /usr/bin/docker ]; then
  export PATH="/usr/bin:$PATH"
fi
export DOCKER_BUILDKIT=1

docker_available() {
  command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1
}
