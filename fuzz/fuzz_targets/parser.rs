//! The Dockerfile parser, the stage model, resolution and the outline/targets/check
//! data must reject bad input with an error, never a panic.
#![no_main]

use kiln_frontend::dockerfile::{Dockerfile, ResolveOptions, check, outline, parse};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(ast) = parse(text) else {
        return;
    };
    // Rendering every node must work for any parsed input.
    for node in &ast.nodes {
        let _ = node.dump();
    }
    let Ok(df) = Dockerfile::parse("fuzz.Dockerfile", text) else {
        return;
    };
    let _ = outline::render_targets(&outline::targets(&df));
    let mut opts = ResolveOptions::default();
    // Exercise build args and every named target, not only the default one.
    opts.build_args.insert("A".into(), "x".into());
    let _ = df.resolve(&opts);
    for stage in &df.stages {
        opts.target = stage.name.clone();
        if let Ok(o) = outline::outline(&df, &opts) {
            let _ = outline::render_outline(&o);
        }
    }
    let _ = check::check("fuzz.Dockerfile", text, &ResolveOptions::default());
});
