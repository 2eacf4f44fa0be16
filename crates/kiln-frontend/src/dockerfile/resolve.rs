//! Resolving a Dockerfile for one build: ARG scoping, FROM expansion, stage references,
//! `--target` pruning and dependency ordering.

use super::error::{FrontendError, InstrError};
use super::instructions::expand::{Expander, expand_instruction};
use super::instructions::{Instruction, InstructionKind};
use super::stages::Dockerfile;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

mod platform;
mod scope;

use scope::{GlobalScope, SliceEnv, StageScope, dedup_last_wins, predefined_args};

pub use platform::Platform;

/// ARGs every build defines in the global scope.
pub const PREDEFINED_ARGS: &[&str] = &[
    "TARGETPLATFORM",
    "TARGETOS",
    "TARGETARCH",
    "TARGETVARIANT",
    "BUILDPLATFORM",
    "BUILDOS",
    "BUILDARCH",
    "BUILDVARIANT",
    "TARGETSTAGE",
];

/// Build args usable by RUN without an ARG declaration, and kept out of image history.
pub const PROXY_ARGS: &[&str] = &[
    "HTTP_PROXY",
    "http_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "FTP_PROXY",
    "ftp_proxy",
    "NO_PROXY",
    "no_proxy",
    "ALL_PROXY",
    "all_proxy",
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
    /// Variables inherited at the start of the stage (from the base stage or the
    /// caller-supplied image ENV).
    pub initial_env: Vec<(String, String)>,
    /// ENV and ARG values in effect at the end of the stage, as RUN sees them (later
    /// pairs shadow earlier).
    pub final_env: Vec<(String, String)>,
    /// ENV only (base image or stage ENV included): what goes into the image config.
    pub image_env: Vec<(String, String)>,
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

impl ResolvedStage {
    /// The variables in scope just before instruction `index` (what a RUN there sees):
    /// one entry per name, the latest value, in first-definition order.
    pub fn env_before(&self, index: usize) -> Vec<(String, String)> {
        let mut pairs = self.initial_env.clone();
        for ri in self.instructions.iter().take(index) {
            match &ri.instruction.kind {
                InstructionKind::Env(kvs) => {
                    pairs.extend(kvs.iter().map(|kv| (kv.key.clone(), kv.value.clone())))
                }
                InstructionKind::Arg(decls) => pairs.extend(
                    decls
                        .iter()
                        .filter_map(|d| d.default.clone().map(|v| (d.name.clone(), v))),
                ),
                _ => {}
            }
        }
        dedup_last_wins(pairs)
    }
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
        // Indexing below relies on stages being numbered by position (as `parse` builds
        // them); the fields are public, so check rather than trust.
        let consistent = self.stages.iter().enumerate().all(|(i, s)| s.index == i);
        if self.stages.is_empty() || !consistent {
            return Err(text.error(
                1,
                1,
                InstrError::new("the Dockerfile has no consistent list of build stages"),
            ));
        }
        let names: HashMap<&str, usize> = self
            .stages
            .iter()
            .filter_map(|st| st.name.as_deref().map(|n| (n, st.index)))
            .collect();
        let predefined = predefined_args(opts);
        let (global_env, global_args) = self.global_scope(&predefined, opts)?;
        let target = match &opts.target {
            None => self.stages.len() - 1,
            Some(t) => self.stage_by_name(t).map(|s| s.index).ok_or_else(|| {
                let names: Vec<&str> = self
                    .stages
                    .iter()
                    .filter_map(|s| s.name.as_deref())
                    .collect();
                FrontendError {
                    file: self.file.as_str().into(),
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
            env.push((
                "TARGETSTAGE".into(),
                self.stages[target].name.clone().unwrap_or_default(),
            ));
            env
        };
        // Bases first: a FROM can only name an earlier stage.
        let mut bases = Vec::with_capacity(self.stages.len());
        for stage in &self.stages {
            bases.push(self.resolve_base(stage, &global_scope, &names)?);
        }
        let mut edges: Vec<Vec<(usize, usize)>> = Vec::with_capacity(self.stages.len());
        for stage in &self.stages {
            let mut deps = Vec::new();
            if let (StageBase::Stage(i), _, _) = &bases[stage.index] {
                deps.push((*i, stage.from.start_line));
            }
            for instr in &stage.instructions {
                for from in stage_refs(instr) {
                    if let Some(SourceRef::Stage(i)) = self.source_ref(&names, &from, instr)? {
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
        // Position in `resolved` of each stage already resolved.
        let mut position: HashMap<usize, usize> = HashMap::new();
        for index in order {
            let stage = &self.stages[index];
            let (base, platform, from_used) = bases[index].clone();
            // A stage built on another inherits its variables: ENV and, as in BuildKit
            // (ARG values live in the build state's environment), its ARG values.
            let mut scope = match &base {
                StageBase::Stage(i) => position
                    .get(i)
                    .and_then(|&p| resolved.get(p))
                    .map(|r: &ResolvedStage| StageScope {
                        vars: r.final_env.clone(),
                        image_env: r.image_env.clone(),
                    })
                    .unwrap_or_else(|| StageScope::new(Vec::new())),
                StageBase::Image(image) => {
                    StageScope::new(opts.image_env.get(image).cloned().unwrap_or_default())
                }
                StageBase::Scratch => StageScope::new(Vec::new()),
            };
            let initial_env = scope.vars.clone();
            let mut instructions = Vec::with_capacity(stage.instructions.len());
            for instr in &stage.instructions {
                let located = |e: InstrError| text.error(instr.start_line, instr.end_line, e);
                let resolved_instr = match &instr.kind {
                    InstructionKind::Arg(decls) => {
                        for d in decls {
                            declared.insert(d.name.clone());
                        }
                        scope
                            .declare_args(instr, decls, &global_scope, opts, self.escape)
                            .map_err(located)?
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
                            InstructionKind::Copy(c) => c
                                .from
                                .as_ref()
                                .map(|f| self.source_ref(&names, f, instr))
                                .transpose()?
                                .flatten(),
                            _ => None,
                        };
                        let mount_from = match &expanded.kind {
                            InstructionKind::Run(r) => r
                                .mounts
                                .iter()
                                .map(|m| {
                                    m.from
                                        .as_ref()
                                        .map(|f| self.source_ref(&names, f, instr))
                                        .transpose()
                                        .map(Option::flatten)
                                })
                                .collect::<Result<_, _>>()?,
                            _ => Vec::new(),
                        };
                        ResolvedInstruction {
                            instruction: expanded,
                            used_vars: used,
                            unset_vars: unset,
                            copy_from,
                            mount_from,
                        }
                    }
                };
                instructions.push(resolved_instr);
            }
            let mut deps: Vec<usize> = edges[index].iter().map(|(i, _)| *i).collect();
            deps.sort_unstable();
            deps.dedup();
            position.insert(index, resolved.len());
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
                initial_env,
                final_env: scope.vars,
                image_env: scope.image_env,
            });
        }
        let unused_build_args = opts
            .build_args
            .keys()
            .filter(|k| {
                !declared.contains(k.as_str())
                    && !PROXY_ARGS.contains(&k.as_str())
                    && !PREDEFINED_ARGS.contains(&k.as_str())
            })
            .cloned()
            .collect();
        Ok(ResolvedBuild {
            target,
            stages: resolved,
            global_args,
            unused_build_args,
        })
    }

    /// The global scope (predefined and global ARG values) for `opts`.
    pub(crate) fn global_scope_for(
        &self,
        opts: &ResolveOptions,
    ) -> Result<Vec<(String, String)>, FrontendError> {
        Ok(self.global_scope(&predefined_args(opts), opts)?.0)
    }

    /// Global ARG values: predefined platform args, then each global ARG in order, a
    /// build arg overriding its default.
    fn global_scope(
        &self,
        predefined: &[(String, String)],
        opts: &ResolveOptions,
    ) -> Result<GlobalScope, FrontendError> {
        let mut env: Vec<(String, String)> = predefined.to_vec();
        let mut args: Vec<ResolvedArg> = Vec::new();
        for instr in &self.global_args {
            let InstructionKind::Arg(decls) = &instr.kind else {
                continue;
            };
            for d in decls {
                let mut deps = BTreeSet::new();
                let value = match (opts.build_args.get(&d.name), &d.default) {
                    (Some(v), _) => Some(v.clone()),
                    (None, Some(default)) => {
                        let mut ex = Expander::new(self.escape, &env);
                        let v = ex.word(default).map_err(|e| {
                            self.source_text()
                                .error(instr.start_line, instr.end_line, e)
                        })?;
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
                args.push(ResolvedArg {
                    name: d.name.clone(),
                    value,
                    description: d.description.clone(),
                    line: instr.start_line,
                    deps,
                });
            }
        }
        Ok((env, args))
    }

    fn resolve_base(
        &self,
        stage: &super::stages::Stage,
        global_scope: &[(String, String)],
        names: &HashMap<&str, usize>,
    ) -> Result<(StageBase, Option<String>, BTreeSet<String>), FrontendError> {
        let text = self.source_text();
        let from = stage.from_instr().ok_or_else(|| {
            text.error(
                stage.from.start_line,
                stage.from.end_line,
                InstrError::new("stage without FROM"),
            )
        })?;
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
        let platform = from
            .platform
            .as_deref()
            .map(|p| ex.word(p))
            .transpose()
            .map_err(located)?;
        if let Some(p) = &platform {
            Platform::parse(p).map_err(|e| {
                located(InstrError::new(e).at(from.platform.clone().unwrap_or_default()))
            })?;
        }
        let lower = base.to_ascii_lowercase();
        let base = if let Some(&other) = names.get(lower.as_str()) {
            if other >= stage.index {
                let what = if other == stage.index {
                    "itself"
                } else {
                    "a later stage"
                };
                return Err(located(
                    InstrError::new(format!(
                        "stage {:?} cannot be based on {what} ({lower:?})",
                        stage.display_name()
                    ))
                    .at(from.base.clone())
                    .hint("FROM can only refer to stages defined above it"),
                ));
            }
            StageBase::Stage(other)
        } else if lower == "scratch" {
            StageBase::Scratch
        } else {
            StageBase::Image(base)
        };
        Ok((base, platform, ex.used))
    }

    /// Interprets a `--from` value: stage index, stage name, or else an image reference.
    fn source_ref(
        &self,
        names: &HashMap<&str, usize>,
        value: &str,
        instr: &Instruction,
    ) -> Result<Option<SourceRef>, FrontendError> {
        if let Ok(index) = value.parse::<i64>() {
            return match usize::try_from(index)
                .ok()
                .filter(|i| *i < self.stages.len())
            {
                Some(i) => Ok(Some(SourceRef::Stage(i))),
                None => Err(self.source_text().error(
                    instr.start_line,
                    instr.end_line,
                    InstrError::new(format!("invalid stage index {index}"))
                        .at(value.to_string())
                        .hint(format!(
                            "the Dockerfile has stages 0 to {}",
                            self.stages.len().saturating_sub(1)
                        )),
                )),
            };
        }
        Ok(Some(match names.get(value.to_ascii_lowercase().as_str()) {
            Some(&index) => SourceRef::Stage(index),
            None => SourceRef::Image(value.to_string()),
        }))
    }

    /// Depth-first post-order from `root`: dependencies before dependents. Iterative,
    /// so a long chain of stages cannot exhaust the stack.
    fn visit(
        &self,
        root: usize,
        edges: &[Vec<(usize, usize)>],
        state: &mut [Visit],
        order: &mut Vec<usize>,
    ) -> Result<(), FrontendError> {
        if !matches!(state.get(root), Some(Visit::New)) {
            return Ok(());
        }
        state[root] = Visit::Active;
        // (stage, index of the next edge to follow)
        let mut stack: Vec<(usize, usize)> = vec![(root, 0)];
        while let Some(top) = stack.last_mut() {
            let (index, next) = *top;
            let stage_edges = edges.get(index).map(Vec::as_slice).unwrap_or_default();
            let Some(&(dep, line)) = stage_edges.get(next) else {
                state[index] = Visit::Done;
                order.push(index);
                stack.pop();
                continue;
            };
            top.1 += 1;
            match state.get(dep) {
                Some(Visit::Active) => {
                    let name = self.stages[dep].display_name();
                    return Err(self.source_text().error(
                        line,
                        line,
                        InstrError::new(format!("circular dependency detected on stage: {name}"))
                            .at(name.clone())
                            .hint("a stage cannot copy from itself or from a stage that depends on it"),
                    ));
                }
                Some(Visit::New) => {
                    state[dep] = Visit::Active;
                    stack.push((dep, 0));
                }
                Some(Visit::Done) | None => {}
            }
        }
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

#[cfg(test)]
mod tests;
