# Helpers of bench/bake30.sh: the 30-image bake project, its Make + docker twin, and
# readers of kiln's plain progress. Source after bench/lib/common.sh.

langs=(go node python rust)
services=25

# The language base service NUM (1-based) builds on.
svc_lang() { echo "${langs[$(( ($1 - 1) % ${#langs[@]} ))]}"; }
svc_name() { printf 'svc%02d' "$1"; }

# gen_project DIR: one base, 4 language bases and 25 services linked by target: contexts.
gen_project() {
  local dir=$1 lang i name
  mkdir -p "$dir/base"
  printf 'FROM busybox\nRUN mkdir -p /opt/base && echo base > /opt/base/stamp\n' \
    > "$dir/base/Dockerfile"
  {
    echo 'group "default" {'
    printf '  targets = ["base"'
    for lang in "${langs[@]}"; do printf ', "lang-%s"' "$lang"; done
    for i in $(seq 1 "$services"); do printf ', "%s"' "$(svc_name "$i")"; done
    printf ']\n}\n'
    printf 'target "base" {\n  context = "base"\n  tags = ["bench30/base:latest"]\n}\n'
  } > "$dir/docker-bake.hcl"
  for lang in "${langs[@]}"; do
    mkdir -p "$dir/lang/$lang"
    printf 'FROM base\nRUN mkdir -p /opt/%s && echo %s > /opt/%s/version\n' \
      "$lang" "$lang" "$lang" > "$dir/lang/$lang/Dockerfile"
    printf 'target "lang-%s" {\n  context = "lang/%s"\n  contexts = { base = "target:base" }\n  tags = ["bench30/lang-%s:latest"]\n}\n' \
      "$lang" "$lang" "$lang" >> "$dir/docker-bake.hcl"
  done
  for i in $(seq 1 "$services"); do
    name=$(svc_name "$i")
    lang=$(svc_lang "$i")
    mkdir -p "$dir/svc/$name/src"
    printf 'package %s\n// entry point of %s\n' "$name" "$name" > "$dir/svc/$name/src/main.txt"
    printf 'helpers of %s\n' "$name" > "$dir/svc/$name/src/util.txt"
    printf 'name=%s\nlang=%s\n' "$name" "$lang" > "$dir/svc/$name/config.ini"
    printf 'FROM lang\nCOPY . /srv/%s\nRUN cat /srv/%s/src/*.txt /srv/%s/config.ini | wc -c > /srv/%s/size\n' \
      "$name" "$name" "$name" "$name" > "$dir/svc/$name/Dockerfile"
    printf 'target "%s" {\n  context = "svc/%s"\n  contexts = { lang = "target:lang-%s" }\n  tags = ["bench30/%s:latest"]\n}\n' \
      "$name" "$name" "$lang" "$name" >> "$dir/docker-bake.hcl"
  done
}

# gen_make DIR: DIR/docker/ Dockerfiles naming the local base images, and DIR/Makefile
# building each image with `docker build` behind a sentinel that depends on its sources.
gen_make() {
  local dir=$1 lang i name
  mkdir -p "$dir/docker" "$dir/stamps"
  {
    echo "all: $(for i in $(seq 1 "$services"); do printf 'stamps/%s ' "$(svc_name "$i")"; done)"
    printf 'stamps/base: base/Dockerfile\n\tdocker build -q -t bench30/base:latest base >/dev/null && touch $@\n'
  } > "$dir/Makefile"
  for lang in "${langs[@]}"; do
    sed 's|^FROM base$|FROM bench30/base:latest|' "$dir/lang/$lang/Dockerfile" \
      > "$dir/docker/lang-$lang.Dockerfile"
    printf 'stamps/lang-%s: stamps/base docker/lang-%s.Dockerfile\n\tdocker build -q -f docker/lang-%s.Dockerfile -t bench30/lang-%s:latest lang/%s >/dev/null && touch $@\n' \
      "$lang" "$lang" "$lang" "$lang" "$lang" >> "$dir/Makefile"
  done
  for i in $(seq 1 "$services"); do
    name=$(svc_name "$i")
    lang=$(svc_lang "$i")
    sed "s|^FROM lang\$|FROM bench30/lang-$lang:latest|" "$dir/svc/$name/Dockerfile" \
      > "$dir/docker/$name.Dockerfile"
    printf 'stamps/%s: stamps/lang-%s docker/%s.Dockerfile $(shell find svc/%s -type f)\n\tdocker build -q -f docker/%s.Dockerfile -t bench30/%s:latest svc/%s >/dev/null && touch $@\n' \
      "$name" "$lang" "$name" "$name" "$name" "$name" "$name" >> "$dir/Makefile"
  done
}

# rerun_targets PROGRESS_FILE: the bake targets with a COPY or RUN step that was not
# CACHED in a plain progress log, one per line, sorted.
rerun_targets() {
  awk '
    /^#[0-9]+ / {
      id = $1; rest = substr($0, length(id) + 2)
      if (!(id in header)) { header[id] = rest; next }
      if (rest ~ /^DONE/ && header[id] ~ /\] (COPY|RUN) /) {
        t = header[id]; sub(/^\[/, "", t); sub(/\].*/, "", t); ran[t] = 1
      }
    }
    END { for (t in ran) print t }' "$1" | sort
}

# median N...: the median of integers.
median() {
  printf '%s\n' "$@" | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'
}
