//! `kiln build --call=...`: answers computed by the Dockerfile frontend alone.

use std::collections::BTreeMap;

use kiln_frontend::dockerfile::{Dockerfile, FrontendError, ResolveOptions, check, outline};

use crate::render::{Format, print_json};

pub struct CallRequest<'a> {
    pub label: &'a str,
    pub text: &'a str,
    pub target: Option<&'a str>,
    pub build_args: &'a BTreeMap<String, String>,
    pub format: Format,
}

impl CallRequest<'_> {
    fn resolve_options(&self) -> ResolveOptions {
        ResolveOptions {
            target: self.target.map(str::to_string),
            build_args: self.build_args.clone(),
            ..ResolveOptions::default()
        }
    }

    fn parse(&self) -> Result<Dockerfile, i32> {
        Dockerfile::parse(self.label, self.text).map_err(|e| frontend_failure(&e))
    }
}

/// Prints a frontend error (file:line, the line, a caret, a hint) and returns exit code 1.
pub fn frontend_failure(error: &FrontendError) -> i32 {
    eprintln!("ERROR: {error}");
    1
}

pub fn outline(request: &CallRequest<'_>) -> i32 {
    let df = match request.parse() {
        Ok(df) => df,
        Err(code) => return code,
    };
    match outline::outline(&df, &request.resolve_options()) {
        Ok(found) => match request.format {
            Format::Json => print_json(&found),
            Format::Text => {
                print!("{}", outline::render_outline(&found));
                0
            }
        },
        Err(error) => frontend_failure(&error),
    }
}

pub fn targets(request: &CallRequest<'_>) -> i32 {
    let df = match request.parse() {
        Ok(df) => df,
        Err(code) => return code,
    };
    let list = outline::targets(&df);
    match request.format {
        Format::Json => print_json(&list),
        Format::Text => {
            print!("{}", outline::render_targets(&list));
            0
        }
    }
}

pub fn check(request: &CallRequest<'_>) -> i32 {
    let report = match check::check(request.label, request.text, &request.resolve_options()) {
        Ok(report) => report,
        Err(error) => return frontend_failure(&error),
    };
    let printed = match request.format {
        Format::Json => print_json(&report),
        Format::Text => {
            print!(
                "{}",
                check::render_check(request.label, request.text, &report)
            );
            0
        }
    };
    if report.failed { 1 } else { printed }
}

/// Validates the Dockerfile for a real build: parse, then resolve the requested target.
pub fn check_quiet(request: &CallRequest<'_>) -> i32 {
    let df = match request.parse() {
        Ok(df) => df,
        Err(code) => return code,
    };
    match df.resolve(&request.resolve_options()) {
        Ok(_) => 0,
        Err(error) => frontend_failure(&error),
    }
}
