//! `--check`: validate every stage and report BuildKit's build-check warnings.

mod rules;

use super::error::FrontendError;
use super::outline::{Location, base64};
use super::resolve::ResolveOptions;
use super::stages::Dockerfile;
use serde::Serialize;

/// One build-check finding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CheckWarning {
    #[serde(rename = "ruleName")]
    pub rule: &'static str,
    pub description: &'static str,
    pub url: String,
    pub detail: String,
    pub location: Location,
    #[serde(skip)]
    pub line: usize,
}

/// What `check` found. `failed` is set when resolving a stage failed (`error`), or when
/// `# check=error=true` turns warnings into a failed build.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CheckReport {
    pub warnings: Vec<CheckWarning>,
    pub sources: Vec<String>,
    /// The first error found while resolving all stages.
    #[serde(
        rename = "buildError",
        skip_serializing_if = "Option::is_none",
        serialize_with = "error_message"
    )]
    pub error: Option<FrontendError>,
    #[serde(skip)]
    pub failed: bool,
}

fn error_message<S: serde::Serializer>(e: &Option<FrontendError>, s: S) -> Result<S::Ok, S::Error> {
    #[derive(Serialize)]
    struct BuildError<'a> {
        message: &'a str,
        location: Location,
    }
    match e {
        Some(e) => BuildError {
            message: &e.message,
            location: Location::lines(e.line, e.end_line),
        }
        .serialize(s),
        None => s.serialize_none(),
    }
}

/// Settings from the `# check=skip=A,B;error=true` directive.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CheckConfig {
    pub skip: Vec<String>,
    pub skip_all: bool,
    pub error: bool,
}

impl CheckConfig {
    pub fn parse(directive: &str) -> CheckConfig {
        let mut cfg = CheckConfig::default();
        for part in directive.split(';') {
            let Some((key, value)) = part.split_once('=') else {
                continue;
            };
            match key.trim().to_ascii_lowercase().as_str() {
                "skip" => {
                    for rule in value.split(',').map(str::trim).filter(|r| !r.is_empty()) {
                        if rule.eq_ignore_ascii_case("all") {
                            cfg.skip_all = true;
                        } else {
                            cfg.skip.push(rule.to_string());
                        }
                    }
                }
                "error" => cfg.error = value.trim().eq_ignore_ascii_case("true"),
                _ => {}
            }
        }
        cfg
    }

    fn skips(&self, rule: &str) -> bool {
        self.skip_all || self.skip.iter().any(|s| s.eq_ignore_ascii_case(rule))
    }
}

/// Parses the file (a syntax error is returned as `Err`), resolves every stage (the first
/// error goes to [`CheckReport::error`]) and runs the build checks.
pub fn check(
    file_label: &str,
    src: &str,
    opts: &ResolveOptions,
) -> Result<CheckReport, FrontendError> {
    let df = Dockerfile::parse(file_label, src)?;
    let build = df.resolve(&ResolveOptions {
        all_stages: true,
        ..opts.clone()
    });
    let cfg = df
        .directives
        .check
        .as_ref()
        .map(|d| CheckConfig::parse(&d.value))
        .unwrap_or_default();
    let mut warnings: Vec<CheckWarning> = rules::run(&df, build.as_ref().ok(), opts)
        .into_iter()
        .filter(|w| !cfg.skips(w.rule))
        .collect();
    warnings.sort_by_key(|w| w.line);
    let error = build.err();
    let failed = error.is_some() || (cfg.error && !warnings.is_empty());
    Ok(CheckReport {
        warnings,
        sources: vec![base64(src.as_bytes())],
        error,
        failed,
    })
}

/// Plain-text rendering, one block per warning.
pub fn render_check(df_label: &str, src: &str, report: &CheckReport) -> String {
    let lines: Vec<&str> = src.lines().collect();
    let mut out = String::new();
    for w in &report.warnings {
        out.push_str(&format!(
            "WARNING: {} - {}\n{}\n{df_label}:{}\n",
            w.rule, w.url, w.detail, w.line
        ));
        if let Some(text) = w.line.checked_sub(1).and_then(|i| lines.get(i)) {
            out.push_str(&format!(" {:>4} | >>> {text}\n", w.line));
        }
        out.push('\n');
    }
    if let Some(e) = &report.error {
        out.push_str(&format!("ERROR: {e}\n"));
    }
    if report.warnings.is_empty() {
        out.push_str("Check complete, no warnings found.\n");
    } else {
        out.push_str(&format!(
            "Check complete, {} warning{} found!\n",
            report.warnings.len(),
            if report.warnings.len() == 1 {
                " has been"
            } else {
                "s have been"
            }
        ));
    }
    out
}
