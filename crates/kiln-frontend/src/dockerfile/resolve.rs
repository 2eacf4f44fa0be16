//! Resolving a Dockerfile for one build: ARG scoping, FROM expansion, stage references,
//! `--target` pruning and dependency ordering.

use super::error::{FrontendError, InstrError};
use super::instructions::expand::{Expander, expand_instruction};
use super::instructions::{ArgDecl, Instruction, InstructionKind};
use super::stages::Dockerfile;
use crate::shell::Env;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

mod platform;

pub use platform::Platform;

/// ARGs every build defines in the global scope.
pub const PREDEFINED_ARGS: &[&str] = &[
    "TARGETPLATFORM", "TARGETOS", "TARGETARCH", "TARGETVARIANT", "BUILDPLATFORM", "BUILDOS",
    "BUILDARCH", "BUILDVARIANT", "TARGETSTAGE",
];

/// Build args usable by RUN without an ARG declaration, and kept out of image history.
pub const PROXY_ARGS: &[&str] = &[
    "HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "FTP_PROXY", "ftp_proxy", "NO_PROXY",
    "no_proxy", "ALL_PROXY", "all_proxy",
];

#[derive(Debug, Clone, Default)]
pub struct ResolveOptions {
    /// Stage to build (name, case-insensitive); the last stage when `None`.
    pub target: Option<String>,
    /// `--build-arg` values.
    pub build_args: BTreeMap<String, String>,
    pub target_platform: Platform,
    pub build_platform: Platform,
    /// ENV of base images, keyed by the expanded image reference, when the caller has
    /// fetched their configs (so `ENV PATH=/x:$PATH` sees the image's PATH).
    pub image_env: HashMap<String, Vec<(String, String)>>,
    /// Resolve every stage, not only those the target needs (used by `check`).
    pub all_stages: bool,
}

/// What a stage builds on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "value", rename_all = "lowercase")]
pub enum StageBase {
    /// `FROM scratch`.
    Scratch,
    /// An image reference, variables expanded.
    Image(String),
    /// An earlier stage, by index.
    Stage(usize),
}

/// A `--from` or `--mount from=` source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "value", rename_all = "lowercase")]
pub enum SourceRef {
    Stage(usize),
    Image(String),
}

/// One instruction after expansion.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ResolvedInstruction {
    /// The instruction with variables expanded; ARG defaults replaced by effective values.
    pub instruction: Instruction,
    /// ARG/ENV names the expansion read.
    pub used_vars: BTreeSet<String>,
    /// Names referenced but not defined.
    pub unset_vars: BTreeSet<String>,
    /// `COPY --from` source.
    pub copy_from: Option<SourceRef>,
    /// `RUN --mount from=` sources, parallel to the mounts (None: build context).
    pub mount_from: Vec<Option<SourceRef>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ResolvedStage {
    pub index: usize,
    pub name: Option<String>,
    pub base: StageBase,
    /// `FROM --platform`, expanded.
    pub platform: Option<String>,
    /// Global ARGs the FROM line used.
    pub from_used_vars: BTreeSet<String>,
    pub instructions: Vec<ResolvedInstruction>,
    /// Stages this one needs (base, `--from`, mounts), by index.
    pub deps: Vec<usize>,
    pub start_line: usize,
    pub end_line: usize,
    /// Proxy build args handed to RUN without being declared.
    pub proxy_env: Vec<(String, String)>,
    /// ENV and ARG values in effect at the end of the stage (later pairs shadow earlier).
    pub final_env: Vec<(String, String)>,
}

/// A global (`ARG` before `FROM`) argument after build args were applied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ResolvedArg {
    pub name: String,
    pub value: Option<String>,
    pub description: String,
    pub line: usize,
    /// Other ARGs its default referenced.
    pub deps: BTreeSet<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ResolvedBuild {
    /// Index of the target stage.
    pub target: usize,
    /// The needed stages, dependencies before dependents, the target last.
    pub stages: Vec<ResolvedStage>,
    pub global_args: Vec<ResolvedArg>,
    /// Build args no ARG declared (BuildKit warns about these).
    pub unused_build_args: Vec<String>,
}

impl ResolvedBuild {
    pub fn stage(&self, index: usize) -> Option<&ResolvedStage> {
        self.stages.iter().find(|s| s.index == index)
    }
}

impl Dockerfile {
    /// Resolves the build for `opts`: which stages are needed, in which order, with
    /// every expandable value expanded.
    pub fn resolve(&self, opts: &ResolveOptions) -> Result<ResolvedBuild, FrontendError> {
        let text = self.source_text();
        let predefined = predefined_args(opts);
        let (global_env, global_args) = self.global_scope(&predefined, opts)?;
        let target = match &opts.target {
            None => self.stages.len() - 1,
            Some(t) => self.stage_by_name(t).map(|s| s.index).ok_or_else(|| {
                let names: Vec<&str> = self.stages.iter().filter_map(|s| s.name.as_deref()).collect();
                FrontendError {
                    file: self.file.clone(),
                    line: 0,
                    end_line: 0,
                    column: None,
                    source_line: None,
                    message: format!("target stage {t:?} could not be found"),
                    hint: Some(if names.is_empty() {
                        "the Dockerfile has no named stages".into()
                    } else {
                        format!("stages: {}", names.join(", "))
                    }),
                }
            })?,
        };
        let global_scope: Vec<(String, String)> = {
            let mut env = global_env.clone();
            env.push(("TARGETSTAGE".into(), self.stages[target].name.clone().unwrap_or_default()));
            env
        };
        // Bases first: a FROM can only name an earlier stage.
        let mut bases = Vec::with_capacity(self.stages.len());
        for stage in &self.stages {
            bases.push(self.resolve_base(stage, &global_scope)?);
        }
        let mut edges: Vec<Vec<(usize, usize)>> = Vec::with_capacity(self.stages.len());
        for stage in &self.stages {
            let mut deps = Vec::new();
            if let (StageBase::Stage(i), _, _) = &bases[stage.index] {
                deps.push((*i, stage.from.start_line));
            }
            for instr in &stage.instructions {
                for from in stage_refs(instr) {
                    if let Some(SourceRef::Stage(i)) = self.source_ref(&from, instr)? {
                        deps.push((i, instr.start_line));
                    }
                }
            }
            edges.push(deps);
        }
        let order = if opts.all_stages {
            let mut order = Vec::new();
            let mut state = vec![Visit::New; self.stages.len()];
            for i in 0..self.stages.len() {
                self.visit(i, &edges, &mut state, &mut order)?;
            }
            order
        } else {
            let mut order = Vec::new();
            let mut state = vec![Visit::New; self.stages.len()];
            self.visit(target, &edges, &mut state, &mut order)?;
            order
        };
        let known_globals: HashSet<&str> = global_args.iter().map(|a| a.name.as_str()).collect();
        let mut declared: HashSet<String> = known_globals.iter().map(|s| s.to_string()).collect();
        let mut resolved: Vec<ResolvedStage> = Vec::with_capacity(order.len());
        let proxy_env: Vec<(String, String)> = opts
            .build_args
            .iter()
            .filter(|(k, _)| PROXY_ARGS.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let mut stage_env_names: HashMap<usize, HashSet<String>> = HashMap::new();
        for index in order {
            let stage = &self.stages[index];
            let (base, platform, from_used) = bases[index].clone();
            // A stage built on another inherits its ENV and, as in BuildKit, its ARG values.
            let mut scope = match &base {
                StageBase::Stage(i) => stage_env_names
                    .get(i)
                    .zip(resolved.iter().find(|r| r.index == *i))
                    .map(|(names, r)| StageScope { vars: r.final_env.clone(), env_names: names.clone() })
                    .unwrap_or_else(|| StageScope::new(Vec::new())),
                StageBase::Image(image) => StageScope::new(opts.image_env.get(image).cloned().unwrap_or_default()),
                StageBase::Scratch => StageScope::new(Vec::new()),
            };
            let mut instructions = Vec::with_capacity(stage.instructions.len());
            for instr in &stage.instructions {
                let located = |e: InstrError| text.error(instr.start_line, instr.end_line, e);
                let resolved_instr = match &instr.kind {
                    InstructionKind::Arg(decls) => {
                        for d in decls {
                            declared.insert(d.name.clone());
                        }
                        scope.declare_args(instr, decls, &global_scope, opts, self.escape).map_err(located)?
                    }
                    _ => {
                        let mut ex = Expander::new(self.escape, &scope.vars);
                        let expanded = expand_instruction(instr, &mut ex).map_err(located)?;
                        let (used, unset) = (ex.used, ex.unset);
                        if let InstructionKind::Env(pairs) = &expanded.kind {
                            for kv in pairs {
                                scope.set_env(&kv.key, &kv.value);
                            }
                        }
                        let copy_from = match &instr.kind {
                            InstructionKind::Copy(c) => c.from.as_ref().map(|f| self.source_ref(f, instr)).transpose()?.flatten(),
                            _ => None,
                        };
                        let mount_from = match &expanded.kind {
                            InstructionKind::Run(r) => r
                                .mounts
                                .iter()
                                .map(|m| m.from.as_ref().map(|f| self.source_ref(f, instr)).transpose().map(Option::flatten))
                                .collect::<Result<_, _>>()?,
                            _ => Vec::new(),
                        };
                        ResolvedInstruction { instruction: expanded, used_vars: used, unset_vars: unset, copy_from, mount_from }
                    }
                };
                instructions.push(resolved_instr);
            }
            stage_env_names.insert(index, scope.env_names.clone());
            let mut deps: Vec<usize> = edges[index].iter().map(|(i, _)| *i).collect();
            deps.sort_unstable();
            deps.dedup();
            resolved.push(ResolvedStage {
                index,
                name: stage.name.clone(),
                base,
                platform,
                from_used_vars: from_used,
                instructions,
                deps,
                start_line: stage.from.start_line,
                end_line: stage.end_line(),
                proxy_env: proxy_env.clone(),
                final_env: scope.vars,
            });
        }
        let unused_build_args = opts
            .build_args
            .keys()
            .filter(|k| !declared.contains(k.as_str()) && !PROXY_ARGS.contains(&k.as_str()) && !PREDEFINED_ARGS.contains(&k.as_str()))
            .cloned()
            .collect();
        Ok(ResolvedBuild { target, stages: resolved, global_args, unused_build_args })
    }

    /// Global ARG values: predefined platform args, then each global ARG in order, a
    /// build arg overriding its default.
    fn global_scope(
        &self,
        predefined: &[(String, String)],
        opts: &ResolveOptions,
    ) -> Result<(Vec<(String, String)>, Vec<ResolvedArg>), FrontendError> {
        let mut env: Vec<(String, String)> = predefined.to_vec();
        let mut args: Vec<ResolvedArg> = Vec::new();
        for instr in &self.global_args {
            let InstructionKind::Arg(decls) = &instr.kind else { continue };
            for d in decls {
                let mut deps = BTreeSet::new();
                let value = match (opts.build_args.get(&d.name), &d.default) {
                    (Some(v), _) => Some(v.clone()),
                    (None, Some(default)) => {
                        let mut ex = Expander::new(self.escape, &env);
                        let v = ex.word(default).map_err(|e| self.source_text().error(instr.start_line, instr.end_line, e))?;
                        deps = ex.used;
                        if deps.remove(&d.name)
                            && let Some(old) = args.iter().rev().find(|a| a.name == d.name)
                        {
                            deps.extend(old.deps.iter().cloned());
                        }
                        Some(v)
                    }
                    (None, None) => None,
                };
                if let Some(v) = &value {
                    env.push((d.name.clone(), v.clone()));
                }
                args.push(ResolvedArg { name: d.name.clone(), value, description: d.description.clone(), line: instr.start_line, deps });
            }
        }
        Ok((env, args))
    }

    fn resolve_base(
        &self,
        stage: &super::stages::Stage,
        global_scope: &[(String, String)],
    ) -> Result<(StageBase, Option<String>, BTreeSet<String>), FrontendError> {
        let text = self.source_text();
        let from = stage.from_instr().ok_or_else(|| text.error(stage.from.start_line, stage.from.end_line, InstrError::new("stage without FROM")))?;
        let located = |e: InstrError| text.error(stage.from.start_line, stage.from.end_line, e);
        let scope = SliceEnv(global_scope);
        let mut ex = Expander::new(self.escape, &scope);
        let base = ex.word(&from.base).map_err(located)?;
        if base.is_empty() {
            return Err(located(
                InstrError::new(format!("base name ({}) should not be blank", from.base))
                    .at(from.base.clone())
                    .hint("the variables it uses are empty; declare them with a default before the first FROM or pass --build-arg"),
            ));
        }
        let platform = from.platform.as_deref().map(|p| ex.word(p)).transpose().map_err(located)?;
        if let Some(p) = &platform {
            Platform::parse(p).map_err(|e| located(InstrError::new(e).at(from.platform.clone().unwrap_or_default())))?;
        }
        let lower = base.to_ascii_lowercase();
        let base = if let Some(other) = self.stages.iter().find(|s| s.name.as_deref() == Some(lower.as_str())) {
            if other.index >= stage.index {
                let what = if other.index == stage.index { "itself" } else { "a later stage" };
                return Err(located(
                    InstrError::new(format!("stage {:?} cannot be based on {what} ({lower:?})", stage.display_name()))
                        .at(from.base.clone())
                        .hint("FROM can only refer to stages defined above it"),
                ));
            }
            StageBase::Stage(other.index)
        } else if lower == "scratch" {
            StageBase::Scratch
        } else {
            StageBase::Image(base)
        };
        Ok((base, platform, ex.used))
    }

    /// Interprets a `--from` value: stage index, stage name, or else an image reference.
    fn source_ref(&self, value: &str, instr: &Instruction) -> Result<Option<SourceRef>, FrontendError> {
        if let Ok(index) = value.parse::<i64>() {
            return match usize::try_from(index).ok().filter(|i| *i < self.stages.len()) {
                Some(i) => Ok(Some(SourceRef::Stage(i))),
                None => Err(self.source_text().error(
                    instr.start_line,
                    instr.end_line,
                    InstrError::new(format!("invalid stage index {index}"))
                        .at(value.to_string())
                        .hint(format!("the Dockerfile has stages 0 to {}", self.stages.len() - 1)),
                )),
            };
        }
        Ok(Some(match self.stage_by_name(value) {
            Some(stage) => SourceRef::Stage(stage.index),
            None => SourceRef::Image(value.to_string()),
        }))
    }

    fn visit(
        &self,
        index: usize,
        edges: &[Vec<(usize, usize)>],
        state: &mut [Visit],
        order: &mut Vec<usize>,
    ) -> Result<(), FrontendError> {
        match state.get(index) {
            // An active stage reached here is reported by the edge check below.
            Some(Visit::Done | Visit::Active) | None => return Ok(()),
            Some(Visit::New) => {}
        }
        state[index] = Visit::Active;
        for &(dep, line) in edges.get(index).map(Vec::as_slice).unwrap_or_default() {
            if matches!(state.get(dep), Some(Visit::Active)) {
                let name = self.stages[dep].display_name();
                return Err(self.source_text().error(
                    line,
                    line,
                    InstrError::new(format!("circular dependency detected on stage: {name}"))
                        .at(name.clone())
                        .hint("a stage cannot copy from itself or from a stage that depends on it"),
                ));
            }
            self.visit(dep, edges, state, order)?;
        }
        state[index] = Visit::Done;
        order.push(index);
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Visit {
    New,
    Active,
    Done,
}

/// The `--from` / `from=` values of an instruction, as written.
fn stage_refs(instr: &Instruction) -> Vec<String> {
    match &instr.kind {
        InstructionKind::Copy(c) => c.from.iter().cloned().collect(),
        InstructionKind::Run(r) => r.mounts.iter().filter_map(|m| m.from.clone()).collect(),
        _ => Vec::new(),
    }
}

fn predefined_args(opts: &ResolveOptions) -> Vec<(String, String)> {
    let t = &opts.target_platform;
    let b = &opts.build_platform;
    let mut out = vec![
        ("BUILDPLATFORM".to_string(), b.to_string()),
        ("BUILDOS".to_string(), b.os.clone()),
        ("BUILDARCH".to_string(), b.arch.clone()),
        ("BUILDVARIANT".to_string(), b.variant.clone().unwrap_or_default()),
        ("TARGETPLATFORM".to_string(), t.to_string()),
        ("TARGETOS".to_string(), t.os.clone()),
        ("TARGETARCH".to_string(), t.arch.clone()),
        ("TARGETVARIANT".to_string(), t.variant.clone().unwrap_or_default()),
    ];
    for (k, v) in &mut out {
        if let Some(o) = opts.build_args.get(k.as_str()) {
            *v = o.clone();
        }
    }
    out
}

/// Lets a borrowed slice of pairs serve as an expansion environment.
struct SliceEnv<'a>(&'a [(String, String)]);

impl crate::shell::Env for SliceEnv<'_> {
    fn lookup(&self, name: &str) -> Option<&str> {
        self.0.lookup(name)
    }
}

/// Variables visible inside one stage.
struct StageScope {
    vars: Vec<(String, String)>,
    /// Names set by ENV (they win over a later ARG of the same name).
    env_names: HashSet<String>,
}

impl StageScope {
    fn new(inherited: Vec<(String, String)>) -> Self {
        let env_names = inherited.iter().map(|(k, _)| k.clone()).collect();
        Self { vars: inherited, env_names }
    }

    fn set_env(&mut self, key: &str, value: &str) {
        self.env_names.insert(key.to_string());
        self.vars.push((key.to_string(), value.to_string()));
    }

    fn declare_args(
        &mut self,
        instr: &Instruction,
        decls: &[ArgDecl],
        global_scope: &[(String, String)],
        opts: &ResolveOptions,
        escape: char,
    ) -> Result<ResolvedInstruction, InstrError> {
        let mut used = BTreeSet::new();
        let mut unset = BTreeSet::new();
        let mut out = Vec::with_capacity(decls.len());
        for d in decls {
            let value = if let Some(v) = opts.build_args.get(&d.name) {
                Some(v.clone())
            } else if let Some(default) = &d.default {
                let mut ex = Expander::new(escape, &self.vars);
                let v = ex.word(default)?;
                used.extend(ex.used);
                unset.extend(ex.unset);
                Some(v)
            } else {
                global_scope.lookup(&d.name).map(str::to_string)
            };
            if let Some(v) = &value
                && !self.env_names.contains(&d.name)
            {
                self.vars.push((d.name.clone(), v.clone()));
            }
            out.push(ArgDecl { default: value, ..d.clone() });
        }
        Ok(ResolvedInstruction {
            instruction: Instruction { kind: InstructionKind::Arg(out), ..instr.clone() },
            used_vars: used,
            unset_vars: unset,
            copy_from: None,
            mount_from: Vec::new(),
        })
    }
}

#[cfg(test)]
mod tests;
