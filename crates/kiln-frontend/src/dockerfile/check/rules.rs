//! The individual build checks (names, messages and URLs as BuildKit reports them).

use super::CheckWarning;
use crate::dockerfile::instructions::expand::Expander;
use crate::dockerfile::instructions::parse::levenshtein;
use crate::dockerfile::instructions::{CommandLine, Instruction, InstructionKind, KEYWORDS};
use crate::dockerfile::outline::Location;
use crate::dockerfile::resolve::{PREDEFINED_ARGS, ResolveOptions, ResolvedBuild, StageBase};
use crate::dockerfile::stages::Dockerfile;
use std::collections::HashSet;

fn warn(
    rule: &'static str,
    description: &'static str,
    detail: String,
    start: usize,
    end: usize,
) -> CheckWarning {
    let mut slug = String::new();
    for (i, c) in rule.chars().enumerate() {
        // Acronyms stay together: JSONArgsRecommended → json-args-recommended.
        let prev_upper = rule
            .chars()
            .nth(i.wrapping_sub(1))
            .is_some_and(|p| p.is_ascii_uppercase());
        let next_lower = rule
            .chars()
            .nth(i + 1)
            .is_some_and(|n| n.is_ascii_lowercase());
        if c.is_ascii_uppercase() && i > 0 && (!prev_upper || next_lower) {
            slug.push('-');
        }
        slug.push(c.to_ascii_lowercase());
    }
    CheckWarning {
        rule,
        description,
        url: format!("https://docs.docker.com/go/dockerfile/rule/{slug}/"),
        detail,
        location: Location::lines(start, end),
        line: start,
    }
}

pub(super) fn run(
    df: &Dockerfile,
    build: Option<&ResolvedBuild>,
    opts: &ResolveOptions,
) -> Vec<CheckWarning> {
    let mut out = Vec::new();
    for w in &df.warnings {
        out.push(warn(
            "NoEmptyContinuation",
            "Empty continuation lines will become errors in a future release",
            "Empty continuation line".into(),
            w.line,
            w.line,
        ));
    }
    instruction_casing(df, &mut out);
    let global_names: HashSet<&str> = df
        .global_args
        .iter()
        .flat_map(|i| match &i.kind {
            InstructionKind::Arg(d) => d.iter().map(|a| a.name.as_str()).collect(),
            _ => Vec::new(),
        })
        .collect();
    // Global variables with defaults only, as a build without --build-arg sees them.
    let default_scope = df
        .global_scope_for(&ResolveOptions {
            build_args: Default::default(),
            ..opts.clone()
        })
        .unwrap_or_default();
    for stage in &df.stages {
        let Some(from) = stage.from_instr() else {
            continue;
        };
        let (start, end) = (stage.from.start_line, stage.from.end_line);
        if let Some(name) = &from.stage_name_as_written {
            if name.to_ascii_lowercase() != *name {
                out.push(warn(
                    "StageNameCasing",
                    "Stage names should be lowercase",
                    format!("Stage name '{name}' should be lowercase"),
                    start,
                    end,
                ));
            }
            if matches!(name.to_ascii_lowercase().as_str(), "scratch" | "context") {
                out.push(warn(
                    "ReservedStageName",
                    "Reserved words should not be used as stage names",
                    format!("Stage name should not use the same name as reserved stage {name:?}"),
                    start,
                    end,
                ));
            }
        }
        if let Some(as_kw) = &from.as_keyword {
            let from_upper = stage.from.keyword == stage.from.keyword.to_ascii_uppercase();
            let as_upper = as_kw == &as_kw.to_ascii_uppercase();
            if from_upper != as_upper {
                out.push(warn(
                    "FromAsCasing",
                    "The 'as' keyword should match the case of the 'from' keyword",
                    format!(
                        "'{as_kw}' and '{}' keywords' casing do not match",
                        stage.from.keyword
                    ),
                    start,
                    end,
                ));
            }
        }
        if from
            .platform
            .as_deref()
            .is_some_and(|p| p == "$TARGETPLATFORM" || p == "${TARGETPLATFORM}")
        {
            out.push(warn("RedundantTargetPlatform", "Setting platform to predefined $TARGETPLATFORM in FROM is redundant as this is the default behavior", format!("Setting platform to predefined {} in FROM is redundant as this is the default behavior", from.platform.clone().unwrap_or_default()), start, end));
        }
        if let Some(p) = from.platform.as_deref().filter(|p| !p.contains('$')) {
            // A stage named after its platform (`build-arm64`) pins it on purpose.
            let named_for_it = from.stage_name.as_deref().is_some_and(|n| {
                p.split('/')
                    .filter(|part| part.len() > 2)
                    .any(|part| n.contains(&part.to_ascii_lowercase()))
            });
            if !named_for_it {
                out.push(warn(
                    "FromPlatformFlagConstDisallowed",
                    "FROM --platform flag should not use a constant value",
                    format!("FROM --platform flag should not use constant value {p:?}"),
                    start,
                    end,
                ));
            }
        }
        // Names the FROM line reads that no global ARG declares.
        let declared: Vec<(String, String)> = global_names
            .iter()
            .map(|n| (n.to_string(), "x".to_string()))
            .chain(
                PREDEFINED_ARGS
                    .iter()
                    .map(|n| (n.to_string(), "x".to_string())),
            )
            .collect();
        let mut ex = Expander::new(df.escape, &declared);
        let _ = ex.word(&from.base);
        if let Some(p) = &from.platform {
            let _ = ex.word(p);
        }
        for name in &ex.unset {
            let known = declared.iter().map(|(k, _)| k.as_str());
            let suggestion = suggest(name, known)
                .map(|s| format!(" (did you mean {s}?)"))
                .unwrap_or_default();
            out.push(warn(
                "UndefinedArgInFrom",
                "FROM command must use declared ARGs",
                format!("FROM argument '{name}' is not declared{suggestion}"),
                start,
                end,
            ));
        }
        // The base with only ARG defaults (no --build-arg) must still be a valid name.
        if from.base.contains('$') && ex.unset.is_empty() {
            let mut defaults = Expander::new(df.escape, &default_scope);
            let base = defaults.word(&from.base).unwrap_or_default();
            if base.is_empty() || base.contains(char::is_whitespace) {
                out.push(warn(
                    "InvalidDefaultArgInFrom",
                    "Default value for global ARG results in an empty or invalid base image name",
                    format!(
                        "Default value for ARG {} results in empty or invalid base image name",
                        from.base
                    ),
                    start,
                    end,
                ));
            }
        }
        stage_rules(&stage.instructions, &mut out);
    }
    for instr in df.global_args.iter() {
        secrets_in_arg_env(instr, &mut out);
    }
    if let Some(build) = build {
        undefined_vars(df, build, opts, &mut out);
    }
    out
}

fn instruction_casing(df: &Dockerfile, out: &mut Vec<CheckWarning>) {
    let all: Vec<&Instruction> = df
        .global_args
        .iter()
        .chain(
            df.stages
                .iter()
                .flat_map(|s| std::iter::once(&s.from).chain(s.instructions.iter())),
        )
        .collect();
    let upper = all
        .iter()
        .filter(|i| i.keyword == i.keyword.to_ascii_uppercase())
        .count();
    let lower = all
        .iter()
        .filter(|i| i.keyword == i.keyword.to_ascii_lowercase())
        .count();
    let majority_upper = upper >= lower;
    for i in all {
        let ok = if majority_upper {
            i.keyword == i.keyword.to_ascii_uppercase()
        } else {
            i.keyword == i.keyword.to_ascii_lowercase()
        };
        if !ok && KEYWORDS.contains(&i.keyword.to_ascii_uppercase().as_str()) {
            let case = if majority_upper {
                "uppercase"
            } else {
                "lowercase"
            };
            out.push(warn(
                "ConsistentInstructionCasing",
                "All commands within the Dockerfile should use the same casing (either upper or lower)",
                format!("Command '{}' should match the case of the command majority ({case})", i.keyword),
                i.start_line,
                i.end_line,
            ));
        }
    }
}

fn stage_rules(instructions: &[Instruction], out: &mut Vec<CheckWarning>) {
    let mut seen_cmd: Vec<(&'static str, &Instruction)> = Vec::new();
    let mut has_absolute_workdir = false;
    let mut has_shell = false;
    for instr in instructions {
        let (start, end) = (instr.start_line, instr.end_line);
        match &instr.kind {
            InstructionKind::Maintainer(_) => out.push(warn("MaintainerDeprecated", "The MAINTAINER instruction is deprecated, use a label instead to define an image author", "Maintainer instruction is deprecated in favor of using label".into(), start, end)),
            InstructionKind::Shell(_) => has_shell = true,
            InstructionKind::Cmd(c) | InstructionKind::Entrypoint(c) => {
                if matches!(c, CommandLine::Shell(_)) && !has_shell {
                    out.push(warn("JSONArgsRecommended", "JSON arguments recommended for ENTRYPOINT/CMD to prevent unintended behavior related to OS signals", format!("JSON arguments recommended for {} to prevent unintended behavior related to OS signals", instr.name()), start, end));
                }
                seen_cmd.push((instr.name(), instr));
            }
            InstructionKind::Healthcheck(_) => seen_cmd.push(("HEALTHCHECK", instr)),
            InstructionKind::Workdir(path) => {
                let absolute = path.starts_with('/') || path.starts_with('$') || path.chars().nth(1) == Some(':');
                if !absolute && !has_absolute_workdir {
                    out.push(warn("WorkdirRelativePath", "Relative workdir without an absolute workdir declared within the build can have unexpected results if the base image changes", format!("Relative workdir \"{path}\" can have unexpected results if the base image changes"), start, end));
                }
                has_absolute_workdir |= absolute;
            }
            InstructionKind::Env(pairs) | InstructionKind::Label(pairs) if pairs.iter().any(|p| p.legacy) => {
                out.push(warn("LegacyKeyValueFormat", "Legacy key/value format with whitespace separator should not be used", format!("\"{0} key=value\" should be used instead of legacy \"{0} key value\" format", instr.name()), start, end));
            }
            InstructionKind::Expose(ports) => {
                for p in ports {
                    if let Some((_, proto)) = p.rsplit_once('/')
                        && proto != proto.to_ascii_lowercase()
                    {
                        out.push(warn("ExposeProtoCasing", "Protocol in EXPOSE instruction should be lowercase", format!("Defined protocol '{p}' in EXPOSE instruction should be lowercase"), start, end));
                    }
                    if p.split('/').next().is_some_and(|ports| ports.contains(':')) {
                        out.push(warn("ExposeInvalidFormat", "IP address and host-port mapping should not be used in EXPOSE instruction. This will become an error in a future release", format!("EXPOSE instruction should not define an IP address or host-port mapping, found '{p}'"), start, end));
                    }
                }
            }
            _ => {}
        }
        secrets_in_arg_env(instr, out);
    }
    for name in ["CMD", "ENTRYPOINT", "HEALTHCHECK"] {
        let same: Vec<&&Instruction> = seen_cmd
            .iter()
            .filter(|(n, _)| *n == name)
            .map(|(_, i)| i)
            .collect();
        if let Some((_, earlier)) = same.split_last() {
            for i in earlier {
                out.push(warn("MultipleInstructionsDisallowed", "Multiple instructions of the same type should not be used in the same stage", format!("Multiple {name} instructions should not be used in the same stage because only the last one will be used"), i.start_line, i.end_line));
            }
        }
    }
}

fn secrets_in_arg_env(instr: &Instruction, out: &mut Vec<CheckWarning>) {
    let names: Vec<&str> = match &instr.kind {
        InstructionKind::Arg(d) => d.iter().map(|a| a.name.as_str()).collect(),
        InstructionKind::Env(p) => p.iter().map(|kv| kv.key.as_str()).collect(),
        _ => return,
    };
    const SECRET_WORDS: &[&str] = &[
        "APIKEY",
        "AUTH",
        "CREDENTIAL",
        "CREDENTIALS",
        "KEY",
        "PASSWORD",
        "PWORD",
        "PASSWD",
        "SECRET",
        "TOKEN",
    ];
    for name in names {
        let upper = name.to_ascii_uppercase();
        let parts: Vec<&str> = upper.split(['_', '-', '.']).collect();
        if parts.contains(&"PUBLIC") {
            continue;
        }
        if parts.iter().any(|p| SECRET_WORDS.contains(p)) {
            out.push(warn(
                "SecretsUsedInArgOrEnv",
                "Sensitive data should not be used in the ARG or ENV commands",
                format!(
                    "Do not use ARG or ENV instructions for sensitive data ({} \"{name}\")",
                    instr.name()
                ),
                instr.start_line,
                instr.end_line,
            ));
        }
    }
}

/// Variables used but never defined. Only reported where the whole environment is
/// known: stages rooted in scratch or in an image whose ENV the caller supplied
/// (`ResolveOptions::image_env`); otherwise the image's own ENV (PATH, HOME...) is unknown.
fn undefined_vars(
    df: &Dockerfile,
    build: &ResolvedBuild,
    opts: &ResolveOptions,
    out: &mut Vec<CheckWarning>,
) {
    let env_known = |mut index: usize| -> bool {
        for _ in 0..=df.stages.len() {
            match build.stage(index).map(|s| &s.base) {
                Some(StageBase::Scratch) => return true,
                Some(StageBase::Image(image)) => return opts.image_env.contains_key(image),
                Some(StageBase::Stage(i)) => index = *i,
                None => return false,
            }
        }
        false
    };
    for stage in &build.stages {
        if !env_known(stage.index) {
            continue;
        }
        for (idx, ri) in stage.instructions.iter().enumerate() {
            for name in &ri.unset_vars {
                let env = stage.env_before(idx);
                let suggestion = suggest(name, env.iter().map(|(k, _)| k.as_str()))
                    .map(|s| format!(" (did you mean ${s}?)"))
                    .unwrap_or_default();
                out.push(warn(
                    "UndefinedVar",
                    "Variables should be defined before their use",
                    format!("Usage of undefined variable '${name}'{suggestion}"),
                    ri.instruction.start_line,
                    ri.instruction.end_line,
                ));
            }
        }
    }
}

/// A known name close enough to `name` to be what was meant (typo or casing).
fn suggest<'a>(name: &str, known: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    let lower = name.to_ascii_lowercase();
    known
        .filter(|k| *k != name)
        .map(|k| (levenshtein(&lower, &k.to_ascii_lowercase()), k))
        .filter(|(d, k)| *d <= 2 && *d < k.len().min(name.len()))
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

#[cfg(test)]
mod tests {
    use super::warn;

    #[test]
    fn rule_urls_use_kebab_case() {
        assert_eq!(
            warn("JSONArgsRecommended", "", String::new(), 1, 1).url,
            "https://docs.docker.com/go/dockerfile/rule/json-args-recommended/"
        );
        assert_eq!(
            warn("FromAsCasing", "", String::new(), 1, 1).url,
            "https://docs.docker.com/go/dockerfile/rule/from-as-casing/"
        );
    }
}
