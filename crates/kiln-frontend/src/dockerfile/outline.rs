//! Data for `--call=outline` and `--call=targets`, in the JSON shape BuildKit returns
//! (`docker buildx build --call=... --format=json`), plus the plain-text tables buildx
//! prints.

use super::error::FrontendError;
use super::instructions::{InstructionKind, MountType};
use super::resolve::{PREDEFINED_ARGS, ResolveOptions, ResolvedBuild};
use super::stages::Dockerfile;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

/// A source location: `{"ranges":[{"start":{"line":3},"end":{"line":4}}]}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Location {
    pub ranges: Vec<Range>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Range {
    pub start: Position,
    pub end: Position,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Position {
    pub line: usize,
}

impl Location {
    pub fn lines(start: usize, end: usize) -> Self {
        Location {
            ranges: vec![Range {
                start: Position { line: start },
                end: Position { line: end },
            }],
        }
    }

    fn first_line(&self) -> usize {
        self.ranges.first().map_or(0, |r| r.start.line)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Outline {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub description: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<OutlineArg>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<OutlineSecret>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ssh: Vec<OutlineSecret>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub cache: Vec<OutlineCache>,
    /// The Dockerfile, base64 (Go's encoding of `[][]byte`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub sources: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OutlineArg {
    pub name: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub description: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub value: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location: Option<Location>,
}

/// A secret or ssh agent a RUN mounts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OutlineSecret {
    pub name: String,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub required: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location: Option<Location>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OutlineCache {
    #[serde(rename = "ID")]
    pub id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location: Option<Location>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TargetList {
    pub targets: Vec<Target>,
    pub sources: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Target {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub default: bool,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub description: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub base: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub platform: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location: Option<Location>,
}

/// Every stage, the last one marked default; base and platform as written.
pub fn targets(df: &Dockerfile) -> TargetList {
    let last = df.stages.len().saturating_sub(1);
    let targets = df
        .stages
        .iter()
        .map(|s| {
            let from = s.from_instr();
            Target {
                name: s.name.clone().unwrap_or_default(),
                default: s.index == last,
                description: s.description.clone(),
                base: from.map(|f| f.base.clone()).unwrap_or_default(),
                platform: from.and_then(|f| f.platform.clone()).unwrap_or_default(),
                location: Some(Location::lines(s.from.start_line, s.from.end_line)),
            }
        })
        .collect();
    TargetList {
        targets,
        sources: vec![base64(df.source.as_bytes())],
    }
}

struct ArgInfo {
    name: String,
    description: String,
    value: String,
    line: usize,
    end_line: usize,
    deps: BTreeSet<String>,
}

/// The build parameters the target uses: ARGs (global ones only when a needed FROM line
/// or a stage re-declaration uses them), secrets, ssh agents and cache mounts.
pub fn outline(df: &Dockerfile, opts: &ResolveOptions) -> Result<Outline, FrontendError> {
    let build = df.resolve(&ResolveOptions {
        all_stages: false,
        ..opts.clone()
    })?;
    Ok(outline_of(df, &build))
}

fn outline_of(df: &Dockerfile, build: &ResolvedBuild) -> Outline {
    let mut all: BTreeMap<String, ArgInfo> = BTreeMap::new();
    for (arg, instr) in build.global_args.iter().zip(global_arg_instrs(df)) {
        all.insert(
            arg.name.clone(),
            ArgInfo {
                name: arg.name.clone(),
                description: arg.description.clone(),
                value: arg.value.clone().unwrap_or_default(),
                line: instr.0,
                end_line: instr.1,
                deps: arg.deps.clone(),
            },
        );
    }
    let global_names: BTreeSet<String> = all.keys().cloned().collect();
    let mut used: BTreeSet<String> = BTreeSet::new();
    let mut secrets: Vec<OutlineSecret> = Vec::new();
    let mut ssh: Vec<OutlineSecret> = Vec::new();
    let mut cache: Vec<OutlineCache> = Vec::new();
    let mut seen = BTreeSet::new();
    for stage in &build.stages {
        used.extend(
            stage
                .from_used_vars
                .iter()
                .filter(|v| global_names.contains(*v))
                .cloned(),
        );
        for ri in &stage.instructions {
            let instr = &ri.instruction;
            let loc = Some(Location::lines(instr.start_line, instr.end_line));
            match &instr.kind {
                InstructionKind::Arg(decls) => {
                    let original = df
                        .stages
                        .get(stage.index)
                        .into_iter()
                        .flat_map(|s| s.instructions.iter())
                        .find(|i| i.start_line == instr.start_line);
                    for (i, d) in decls.iter().enumerate() {
                        used.insert(d.name.clone());
                        let declared_default = original.and_then(|o| match &o.kind {
                            InstructionKind::Arg(orig) => orig.get(i).map(|a| a.default.is_some()),
                            _ => None,
                        });
                        // Re-declaring a global or predefined ARG without a default imports it; the
                        // global definition (if any) describes it.
                        let inherits_global = declared_default == Some(false)
                            && (global_names.contains(&d.name)
                                || PREDEFINED_ARGS.contains(&d.name.as_str()));
                        if !inherits_global {
                            all.insert(
                                d.name.clone(),
                                ArgInfo {
                                    name: d.name.clone(),
                                    description: d.description.clone(),
                                    value: d.default.clone().unwrap_or_default(),
                                    line: instr.start_line,
                                    end_line: instr.end_line,
                                    deps: ri.used_vars.clone(),
                                },
                            );
                        }
                    }
                }
                InstructionKind::Run(run) => {
                    for m in &run.mounts {
                        let (list, key) = match m.kind {
                            MountType::Secret => (&mut secrets, "secret"),
                            MountType::Ssh => (&mut ssh, "ssh"),
                            MountType::Cache => {
                                let id =
                                    m.id.clone()
                                        .or_else(|| m.target.clone())
                                        .unwrap_or_default();
                                if seen.insert(("cache", id.clone())) {
                                    cache.push(OutlineCache {
                                        id,
                                        location: loc.clone(),
                                    });
                                }
                                continue;
                            }
                            _ => continue,
                        };
                        let Some(name) = m.effective_id() else {
                            continue;
                        };
                        if seen.insert((key, name.clone())) {
                            list.push(OutlineSecret {
                                name,
                                required: m.required,
                                location: loc.clone(),
                            });
                        }
                    }
                }
                _ => {}
            }
        }
    }
    // An ARG whose default reads other ARGs makes those used too.
    let mut stack: Vec<String> = used.iter().cloned().collect();
    while let Some(name) = stack.pop() {
        if let Some(info) = all.get(&name) {
            for dep in &info.deps {
                if all.contains_key(dep) && used.insert(dep.clone()) {
                    stack.push(dep.clone());
                }
            }
        }
    }
    let mut args: Vec<(usize, OutlineArg)> = used
        .iter()
        .filter_map(|n| all.get(n))
        .map(|a| {
            (
                a.line,
                OutlineArg {
                    name: a.name.clone(),
                    description: a.description.clone(),
                    value: a.value.clone(),
                    location: Some(Location::lines(a.line, a.end_line)),
                },
            )
        })
        .collect();
    args.sort_by_key(|(line, _)| *line);
    let sort = |v: &mut Vec<OutlineSecret>| {
        v.sort_by_key(|s| s.location.as_ref().map_or(0, Location::first_line))
    };
    sort(&mut secrets);
    sort(&mut ssh);
    let target = df.stages.get(build.target);
    Outline {
        name: target.and_then(|t| t.name.clone()).unwrap_or_default(),
        description: target.map(|t| t.description.clone()).unwrap_or_default(),
        args: args.into_iter().map(|(_, a)| a).collect(),
        secrets,
        ssh,
        cache,
        sources: vec![base64(df.source.as_bytes())],
    }
}

/// Line range of each global ARG name, in declaration order (one entry per name).
fn global_arg_instrs(df: &Dockerfile) -> Vec<(usize, usize)> {
    df.global_args
        .iter()
        .flat_map(|i| {
            let n = match &i.kind {
                InstructionKind::Arg(d) => d.len(),
                _ => 0,
            };
            std::iter::repeat_n((i.start_line, i.end_line), n)
        })
        .collect()
}

/// The table `docker buildx build --call=outline` prints.
pub fn render_outline(o: &Outline) -> String {
    let mut out = String::new();
    if !o.name.is_empty() || !o.description.is_empty() {
        let name = if o.name.is_empty() {
            "(default)"
        } else {
            o.name.as_str()
        };
        let mut rows = vec![vec!["TARGET:".to_string(), name.to_string()]];
        if !o.description.is_empty() {
            rows.push(vec!["DESCRIPTION:".into(), o.description.clone()]);
        }
        out.push_str(&table(&rows, 1));
        out.push('\n');
    }
    if !o.args.is_empty() {
        let mut rows = vec![vec![
            "BUILD ARG".to_string(),
            "VALUE".into(),
            "DESCRIPTION".into(),
        ]];
        rows.extend(
            o.args
                .iter()
                .map(|a| vec![a.name.clone(), a.value.clone(), a.description.clone()]),
        );
        out.push_str(&table(&rows, 3));
        out.push('\n');
    }
    for (title, list) in [("SECRET", &o.secrets), ("SSH", &o.ssh)] {
        if list.is_empty() {
            continue;
        }
        let mut rows = vec![vec![title.to_string(), "REQUIRED".into()]];
        rows.extend(list.iter().map(|s| {
            vec![
                s.name.clone(),
                if s.required {
                    "true".into()
                } else {
                    String::new()
                },
            ]
        }));
        out.push_str(&table(&rows, 3));
        out.push('\n');
    }
    out
}

/// The table `docker buildx build --call=targets` prints.
pub fn render_targets(list: &TargetList) -> String {
    let mut rows = vec![vec!["TARGET".to_string(), "DESCRIPTION".into()]];
    for t in &list.targets {
        let name = match (t.name.is_empty(), t.default) {
            (true, true) => "(default)".to_string(),
            (false, true) => format!("{} (default)", t.name),
            _ => t.name.clone(),
        };
        rows.push(vec![name, t.description.clone()]);
    }
    table(&rows, 1)
}

/// Aligns columns like Go's tabwriter: every cell but the last of a row is padded to
/// the column's widest cell plus `padding` spaces.
fn table(rows: &[Vec<String>], padding: usize) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let mut widths = vec![0; columns];
    for row in rows {
        for (i, cell) in row.iter().enumerate().take(row.len().saturating_sub(1)) {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            out.push_str(cell);
            if i + 1 < row.len() {
                out.push_str(&" ".repeat(widths[i] + padding - cell.chars().count()));
            }
        }
        out.push('\n');
    }
    out
}

/// Standard base64 with padding, as Go's JSON encoding of `[]byte`.
pub(crate) fn base64(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc4648_vectors() {
        for (input, expected) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(input.as_bytes()), expected);
        }
    }

    #[test]
    fn table_pads_all_but_last_column() {
        let rows = vec![
            vec!["A".to_string(), "bb".into()],
            vec!["ccc".into(), "".into()],
        ];
        assert_eq!(table(&rows, 1), "A   bb\nccc \n");
    }
}
