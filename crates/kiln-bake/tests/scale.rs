//! A large bake file (about 2,400 lines, 78 targets) must resolve quickly:
//! references are memoized, never re-evaluated.

use std::time::{Duration, Instant};

use kiln_bake::{BakeFile, BakeRequest};

fn big_bake_file() -> String {
    let mut out = String::new();
    out.push_str("variable \"REGISTRY\" { default = \"registry.example.com\" }\n");
    out.push_str("variable \"TAG\" { default = \"latest\" }\n");
    out.push_str(
        "function \"image\" {\n  params = [name]\n  result = \"${REGISTRY}/${name}:${TAG}\"\n}\n",
    );
    out.push_str(
        "target \"_common\" {\n  args = { BASE = \"debian\" }\n  labels = { team = \"kiln\" }\n}\n",
    );
    let mut names = Vec::new();
    for i in 0..76 {
        let name = format!("svc{i:02}");
        out.push_str(&format!("target \"{name}\" {{\n"));
        out.push_str("  inherits = [\"_common\"]\n");
        out.push_str(&format!("  context = \"services/{name}\"\n"));
        out.push_str("  dockerfile = \"Dockerfile\"\n");
        out.push_str(&format!(
            "  tags = [image(\"{name}\"), \"{name}:${{TAG}}\"]\n"
        ));
        out.push_str("  platforms = [\"linux/amd64\", \"linux/arm64\"]\n");
        out.push_str("  args = {\n");
        for a in 0..20 {
            out.push_str(&format!(
                "    ARG_{a} = \"${{upper(\"v{a}\")}}-${{{a} * 2}}\"\n"
            ));
        }
        out.push_str("  }\n");
        if i > 0 {
            out.push_str(&format!(
                "  labels = {{ prev = target.svc{:02}.context }}\n",
                i - 1
            ));
        }
        out.push_str(&format!(
            "  cache-from = [\"type=registry,ref=cache/{name}\"]\n"
        ));
        out.push_str(&format!(
            "  cache-to = [\"type=registry,ref=cache/{name},mode=max\"]\n"
        ));
        out.push_str("}\n");
        names.push(format!("\"{name}\""));
    }
    out.push_str("target \"matrix\" {\n  name = \"m-${v}\"\n  matrix = { v = [\"a\", \"b\"] }\n  inherits = [\"svc00\"]\n}\n");
    out.push_str(&format!(
        "group \"default\" {{\n  targets = [{}]\n}}\n",
        names.join(", ")
    ));
    out
}

#[test]
fn large_file_resolves_fast() {
    let content = big_bake_file();
    let lines = content.lines().count();
    assert!(lines >= 2_400, "generated only {lines} lines");
    let req = BakeRequest {
        files: vec![BakeFile {
            name: "docker-bake.hcl".into(),
            content,
        }],
        targets: vec!["default".into(), "matrix".into()],
        ..BakeRequest::default()
    };
    // Warm up once, then take the best of a few runs to avoid CI noise.
    kiln_bake::resolve(&req).expect("resolves");
    let mut best = Duration::MAX;
    for _ in 0..3 {
        let start = Instant::now();
        let resolved = kiln_bake::resolve(&req).expect("resolves");
        best = best.min(start.elapsed());
        assert_eq!(resolved.targets.len(), 78);
        let t = &resolved.targets["svc05"];
        assert_eq!(
            t.labels.as_ref().unwrap()["prev"].as_deref(),
            Some("services/svc04")
        );
        assert_eq!(
            t.tags.as_ref().unwrap()[0],
            "registry.example.com/svc05:latest"
        );
    }
    eprintln!("resolved {lines} lines in {best:?}");
    // Debug builds are several times slower than release; the bound leaves room for that.
    let limit = if cfg!(debug_assertions) {
        Duration::from_millis(1_000)
    } else {
        Duration::from_millis(100)
    };
    assert!(best < limit, "resolution took {best:?}");
}
