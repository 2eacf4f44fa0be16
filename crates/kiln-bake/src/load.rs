//! Reading bake files: default lookup, format detection and the merge of
//! compose, JSON and HCL files into one [`Config`].

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::compose;
use crate::config::Config;
use crate::doc::{self, EvalOptions, VariableInfo};
use crate::error::{BakeError, Pos};
use crate::eval::Source;
use crate::json_file;

/// A bake file's name (as given or found) and its content.
#[derive(Debug, Clone, PartialEq)]
pub struct BakeFile {
    pub name: String,
    pub content: String,
}

/// File names looked up when no `-f` is given, in merge order.
pub const DEFAULT_FILES: &[&str] = &[
    "compose.yaml",
    "compose.yml",
    "docker-compose.yml",
    "docker-compose.yaml",
    "docker-bake.json",
    "docker-bake.hcl",
    "docker-bake.override.json",
    "docker-bake.override.hcl",
];

/// The default files that exist in `dir`, in merge order.
pub fn default_files(dir: &Path) -> Vec<PathBuf> {
    DEFAULT_FILES
        .iter()
        .map(|f| dir.join(f))
        .filter(|p| p.is_file())
        .collect()
}

/// Reads `-f` arguments (`-` is stdin) or, when empty, the default files.
pub fn read_files(
    names: &[String],
    cwd: &Path,
    stdin: &mut dyn std::io::Read,
) -> Result<Vec<BakeFile>, BakeError> {
    let mut out = Vec::new();
    if names.is_empty() {
        for path in default_files(cwd) {
            let content = std::fs::read_to_string(&path).map_err(|source| BakeError::Io {
                path: path.display().to_string(),
                source,
            })?;
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            out.push(BakeFile { name, content });
        }
        if out.is_empty() {
            return Err(BakeError::resolve("couldn't find a bake definition"));
        }
        return Ok(out);
    }
    for name in names {
        if name == "-" {
            let mut content = String::new();
            stdin
                .read_to_string(&mut content)
                .map_err(|source| BakeError::Io {
                    path: "-".into(),
                    source,
                })?;
            out.push(BakeFile {
                name: "-".into(),
                content,
            });
            continue;
        }
        let path = cwd.join(name);
        let content = std::fs::read_to_string(&path).map_err(|source| BakeError::Io {
            path: name.clone(),
            source,
        })?;
        out.push(BakeFile {
            name: name.clone(),
            content,
        });
    }
    Ok(out)
}

/// Options for [`parse_files`].
#[derive(Debug, Clone, Default)]
pub struct ParseOptions {
    pub eval: EvalOptions,
    /// Environment for compose interpolation.
    pub compose_env: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Default)]
pub struct Parsed {
    pub config: Config,
    pub variables: Vec<VariableInfo>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Format {
    Compose,
    Json,
    Hcl,
}

fn detect(file: &BakeFile) -> Format {
    let lower = file.name.to_ascii_lowercase();
    if lower.ends_with(".yml") || lower.ends_with(".yaml") {
        return Format::Compose;
    }
    if lower.ends_with(".json") {
        return Format::Json;
    }
    if lower.ends_with(".hcl") {
        return Format::Hcl;
    }
    if json_file::looks_like_json(&file.content) {
        return Format::Json;
    }
    if hcl_edit::parser::parse_body(&file.content).is_err() && compose::is_compose(&file.content) {
        return Format::Compose;
    }
    Format::Hcl
}

/// Parses and evaluates files without applying inherits or overrides.
pub fn parse_files(files: &[BakeFile], opts: &ParseOptions) -> Result<Parsed, BakeError> {
    let mut compose_files = Vec::new();
    let mut sources = Vec::new();
    for file in files {
        match detect(file) {
            Format::Compose => compose_files.push((file.name.clone(), file.content.clone())),
            Format::Json => {
                let translated =
                    json_file::json_to_hcl(&file.content).map_err(|e| BakeError::Parse {
                        pos: Source::new(file.name.clone(), file.content.clone()).pos(e.offset),
                        message: e.message,
                    })?;
                sources.push(Source::translated(
                    file.name.clone(),
                    translated.hcl,
                    &file.content,
                    translated.line_origins,
                ));
            }
            Format::Hcl => sources.push(Source::new(file.name.clone(), file.content.clone())),
        }
    }
    let mut config = Config::default();
    if !compose_files.is_empty() {
        let c = compose::parse_compose(
            &compose_files,
            &opts.compose_env,
            opts.eval.file_relative_paths,
        )
        .map_err(|e| BakeError::resolve(format!("failed to parse compose file: {e}")))?;
        config.merge(c);
    }
    let mut variables = Vec::new();
    if !sources.is_empty() {
        let mut bodies = Vec::with_capacity(sources.len());
        for src in &sources {
            let body = hcl_edit::parser::parse_body(&src.text).map_err(|e| {
                let loc = e.location();
                BakeError::Parse {
                    pos: Pos {
                        file: src.name.clone(),
                        line: loc.line(),
                        col: loc.column(),
                    },
                    message: e.message().to_string(),
                }
            })?;
            bodies.push(body);
        }
        let evaluated = doc::evaluate(&sources, &bodies, &opts.eval)?;
        for g in evaluated.config.groups {
            config.add_group(g);
        }
        for t in evaluated.config.targets {
            config.add_target(t);
        }
        variables = evaluated.variables;
    }
    Ok(Parsed { config, variables })
}
