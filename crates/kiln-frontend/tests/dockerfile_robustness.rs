//! Bad input must give errors, never panics: a deterministic mutation run over the
//! fixtures, the conformance Dockerfiles and hand-picked corner cases (a cheap,
//! always-on complement to the `parser` fuzz target).

use kiln_frontend::dockerfile::{Dockerfile, ResolveOptions, check, outline, parse};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;

const CORNER_CASES: &[&str] = &[
    "",
    "\\",
    "`",
    "#",
    "# escape=`\n`",
    "FROM",
    "FROM a AS",
    "FROM a\nRUN <<",
    "FROM a\nRUN <<-\n",
    "FROM a\nRUN <<EOF <<EOF\nEOF\n",
    "FROM a\nCOPY <<'' /x\n",
    "FROM a\nRUN --mount=\"type=cache\" x\n",
    "FROM a\nRUN --mount=type=cache,target=\"/x x\",\"\" y\n",
    "FROM a\nONBUILD\n",
    "FROM a\nONBUILD ONBUILD\n",
    "FROM a\nHEALTHCHECK --interval=9999999999999999h CMD x\n",
    "FROM a\nHEALTHCHECK --retries=99999999999999999999 CMD x\n",
    "FROM a\nCOPY --from=-1 a b\n",
    "FROM a\nCOPY --from=99999999999999999999999 a b\n",
    "FROM a\nCOPY --chmod=77777777777 a b\n",
    "FROM a\nEXPOSE 99999/tcp\n",
    "FROM a\nENV ${\n",
    "FROM a\nARG A=${A:?boom}\nENV B=$A\n",
    "ARG X=${X}${X}\nFROM $X$X\n",
    "FROM \u{feff}a\nRUN \u{1F600} \\\r\n\r\n x\r\n",
    "FROM a\nSHELL []\n",
    "FROM a\nCMD [\"\\u0000\"]\n",
];

/// xorshift64*: deterministic, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

const TOKENS: &[&str] = &[
    "\\\n",
    "`\n",
    "\n",
    " ",
    "\t",
    "#",
    "$",
    "${",
    "}",
    "<<",
    "<<-",
    "EOF",
    "\"",
    "'",
    "[",
    "]",
    ",",
    "=",
    "--",
    "--mount=",
    "--from=",
    "type=",
    "AS ",
    "FROM ",
    "RUN ",
    "COPY ",
    "ARG ",
    "ENV ",
    "ONBUILD ",
    "HEALTHCHECK ",
    "# escape=`\n",
    "# syntax=x\n",
    "0",
    "-1",
    "é",
    "\r",
];

fn mutate(rng: &mut Rng, seed: &str) -> String {
    let mut chars: Vec<char> = seed.chars().collect();
    for _ in 0..1 + rng.below(6) {
        let at = rng.below(chars.len() + 1);
        match rng.below(4) {
            0 if !chars.is_empty() => {
                let end = (at + rng.below(8)).min(chars.len());
                chars.drain(at.min(end)..end);
            }
            1 => {
                let token = TOKENS[rng.below(TOKENS.len())];
                chars.splice(at..at, token.chars());
            }
            2 if !chars.is_empty() => {
                let from = rng.below(chars.len());
                let end = (from + rng.below(40)).min(chars.len());
                let piece: Vec<char> = chars[from..end].to_vec();
                chars.splice(at..at, piece);
            }
            _ => chars.insert(at, char::from(b' ' + (rng.below(95) as u8))),
        }
    }
    chars.into_iter().collect()
}

fn exercise(text: &str) {
    if let Ok(ast) = parse(text) {
        for node in &ast.nodes {
            let _ = node.dump();
        }
    }
    let Ok(df) = Dockerfile::parse("Dockerfile", text) else {
        return;
    };
    let _ = outline::render_targets(&outline::targets(&df));
    let mut opts = ResolveOptions::default();
    opts.build_args.insert("X".into(), "1".into());
    let _ = df.resolve(&opts);
    for stage in &df.stages {
        opts.target = stage.name.clone();
        if let Ok(o) = outline::outline(&df, &opts) {
            let _ = outline::render_outline(&o);
        }
    }
    let _ = check::check("Dockerfile", text, &ResolveOptions::default());
}

fn seeds() -> Vec<String> {
    let mut out: Vec<String> = CORNER_CASES.iter().map(|s| s.to_string()).collect();
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let conformance = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/conformance/dockerfile-parser/testfiles");
    for dir in [fixtures, conformance] {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let file = if path.is_dir() {
                path.join("Dockerfile")
            } else {
                path
            };
            if let Ok(text) = std::fs::read_to_string(file) {
                out.push(text);
            }
        }
    }
    out
}

#[test]
fn corner_cases_do_not_panic() {
    for case in CORNER_CASES {
        let result = catch_unwind(AssertUnwindSafe(|| exercise(case)));
        assert!(result.is_ok(), "panicked on {case:?}");
    }
}

#[test]
fn mutated_dockerfiles_do_not_panic() {
    let seeds = seeds();
    assert!(seeds.len() > CORNER_CASES.len(), "fixtures not found");
    let mut rng = Rng(0x5eed_cafe_f00d_d00d);
    for i in 0..3000 {
        let seed = &seeds[i % seeds.len()];
        let input = mutate(&mut rng, seed);
        let result = catch_unwind(AssertUnwindSafe(|| exercise(&input)));
        assert!(result.is_ok(), "panicked on mutation {i}: {input:?}");
    }
}
