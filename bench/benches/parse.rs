//! Parse + resolve time for a realistic 2,000-line multi-stage Dockerfile.
//! Run: `cargo bench -p kiln-bench --bench parse`.

use kiln_frontend::dockerfile::{Dockerfile, ResolveOptions, check, outline, parse};
use std::fmt::Write;
use std::hint::black_box;
use std::time::{Duration, Instant};

/// Stages of a monorepo build: a shared base, per-service dependency and build stages
/// with cache mounts, heredocs and continuation lines, and a final image copying
/// from every service.
fn generate(target_lines: usize) -> String {
    let mut s = String::from("# syntax=docker/dockerfile:1\n# check=skip=JSONArgsRecommended\n\n");
    for i in 0..10 {
        let _ = writeln!(
            s,
            "# VERSION_{i} version of component {i}\nARG VERSION_{i}=1.{i}.0"
        );
    }
    s.push_str(
        "ARG BASE_IMAGE=debian:bookworm-slim\n\n# base shared toolchain\nFROM ${BASE_IMAGE} AS base\n\
         ENV DEBIAN_FRONTEND=noninteractive \\\n    LANG=C.UTF-8\nRUN apt-get update \\\n \
         && apt-get install -y --no-install-recommends \\\n      ca-certificates curl git build-essential \\\n \
         && rm -rf /var/lib/apt/lists/*\nWORKDIR /src\n\n",
    );
    let mut service = 0;
    while s.lines().count() < target_lines.saturating_sub(12) {
        let v = service % 10;
        let port = 8000 + service;
        let _ = write!(
            s,
            "# deps-{service} fetches dependencies of service {service}\n\
             FROM base AS deps-{service}\n\
             ARG VERSION_{v}\n\
             ENV SERVICE=svc-{service} VERSION=${{VERSION_{v}}}\n\
             COPY services/svc-{service}/Cargo.toml services/svc-{service}/Cargo.lock ./\n\
             RUN --mount=type=cache,target=/root/.cargo/registry,sharing=locked \\\n    \
             --mount=type=cache,target=/src/target,id=target-{service} \\\n    \
             --mount=type=secret,id=registry-token,required=true \\\n    \
             cargo fetch --locked \\\n \
             && echo \"fetched $SERVICE $VERSION\"\n\
             \n\
             # build-{service} compiles service {service}\n\
             FROM deps-{service} AS build-{service}\n\
             COPY --chown=1000:1000 --chmod=0644 services/svc-{service}/ ./\n\
             COPY <<CONF /src/build.env\n\
             SERVICE=$SERVICE\n\
             VERSION=$VERSION\n\
             CONF\n\
             RUN --mount=type=cache,target=/src/target,id=target-{service} \\\n    \
             --network=none \\\n    \
             cargo build --release --offline \\\n \
             && install -D target/release/svc-{service} /out/svc-{service}\n\
             LABEL org.opencontainers.image.title=\"svc-{service}\" \\\n      \
             org.opencontainers.image.version=\"${{VERSION}}\"\n\
             HEALTHCHECK --interval=30s --timeout=3s CMD [\"/out/svc-{service}\", \"--health\"]\n\
             EXPOSE {port}/tcp\n\
             \n"
        );
        service += 1;
    }
    s.push_str("# final ships every service\nFROM gcr.io/distroless/cc AS final\n");
    for i in 0..service {
        let _ = writeln!(s, "COPY --from=build-{i} /out/svc-{i} /usr/local/bin/");
    }
    s.push_str("USER 65532:65532\nENTRYPOINT [\"/usr/local/bin/svc-0\"]\n");
    s
}

/// CPU time of this thread so far (Linux), so that results stay meaningful on a busy
/// machine where wall time includes waiting for a core.
fn thread_cpu_time() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let nanos = stat.split_whitespace().next()?.parse().ok()?;
    Some(Duration::from_nanos(nanos))
}

fn measure(name: &str, iterations: usize, mut f: impl FnMut()) {
    for _ in 0..iterations / 10 {
        f();
    }
    let mut wall = Vec::with_capacity(iterations);
    let cpu_start = thread_cpu_time();
    for _ in 0..iterations {
        let start = Instant::now();
        f();
        wall.push(start.elapsed());
    }
    // The scheduler only accounts CPU time at ticks, so it is averaged over the run.
    let cpu_mean = match (cpu_start, thread_cpu_time()) {
        (Some(a), Some(b)) => format!(
            "{:>7.3} ms",
            b.saturating_sub(a).as_secs_f64() * 1e3 / iterations as f64
        ),
        _ => "    n/a".to_string(),
    };
    wall.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let median = wall.get(wall.len() / 2).copied().unwrap_or_default();
    let min = wall.first().copied().unwrap_or_default();
    println!(
        "{name:<34} median {:>7.3} ms   min {:>7.3} ms   cpu mean {cpu_mean}   ({iterations} iterations)",
        ms(median),
        ms(min)
    );
}

fn main() {
    let src = generate(2000);
    let lines = src.lines().count();
    let df = Dockerfile::parse("Dockerfile", &src).expect("generated Dockerfile parses");
    println!(
        "input: {lines} lines, {} bytes, {} stages",
        src.len(),
        df.stages.len()
    );
    let opts = ResolveOptions::default();
    let all = ResolveOptions {
        all_stages: true,
        ..ResolveOptions::default()
    };
    let iterations = 300;
    measure("parse (raw AST)", iterations, || {
        black_box(parse(black_box(&src)).expect("parses"));
    });
    measure("Dockerfile::parse (typed)", iterations, || {
        black_box(Dockerfile::parse("Dockerfile", black_box(&src)).expect("parses"));
    });
    measure("resolve (default target)", iterations, || {
        black_box(df.resolve(&opts).expect("resolves"));
    });
    measure("parse + resolve", iterations, || {
        let df = Dockerfile::parse("Dockerfile", black_box(&src)).expect("parses");
        black_box(df.resolve(&opts).expect("resolves"));
    });
    measure("outline (default target)", iterations, || {
        black_box(outline::outline(&df, &opts).expect("outline"));
    });
    measure("check (parse, resolve all, rules)", iterations, || {
        black_box(check::check("Dockerfile", black_box(&src), &opts).expect("checks"));
    });
    measure("parse + resolve all stages", iterations, || {
        let df = Dockerfile::parse("Dockerfile", black_box(&src)).expect("parses");
        black_box(df.resolve(&all).expect("resolves"));
    });
}
