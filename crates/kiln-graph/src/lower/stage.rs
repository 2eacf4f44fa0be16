//! One stage: its base, then each instruction in order, editing the image config and
//! adding ops for the instructions that change the filesystem.

use kiln_frontend::dockerfile::instructions::{CommandLine, Healthcheck, KeyValue};
use std::collections::HashMap;

use kiln_frontend::dockerfile::{
    Dockerfile, FrontendError, InstructionKind, ResolveOptions, ResolvedInstruction, ResolvedStage,
};

use super::image::{DEFAULT_PATH, HealthConfig};
use super::{LowerError, LoweredStage, Lowering};
use crate::{FileAction, FileOp, Op, Ownership};

/// What a stage has built so far.
pub(crate) struct StageState {
    pub result: LoweredStage,
    /// Stage name or index, for progress descriptions.
    pub label: String,
    /// Declared ARGs with a value, in declaration order.
    pub args: Vec<(String, String)>,
    /// Proxy build args RUN sees without a declaration (kept out of history).
    pub proxy_env: Vec<(String, String)>,
    /// Whether this stage set CMD itself (ENTRYPOINT clears only an inherited CMD).
    pub cmd_set_here: bool,
    pub step: usize,
    pub steps: usize,
}

impl StageState {
    pub fn describe(&mut self, original: &str) -> String {
        self.step += 1;
        format!(
            "[{} {}/{}] {}",
            self.label,
            self.step,
            self.steps,
            original.trim()
        )
    }

    /// The shell for shell-form commands.
    pub fn shell(&self) -> Vec<String> {
        self.result
            .image
            .config
            .shell
            .clone()
            .unwrap_or_else(|| vec!["/bin/sh".to_string(), "-c".to_string()])
    }

    pub fn command_args(&self, command: &CommandLine) -> Vec<String> {
        match command {
            CommandLine::Exec(args) => args.clone(),
            CommandLine::Shell(text) => {
                let mut args = self.shell();
                args.push(text.clone());
                args
            }
        }
    }

    pub fn workdir(&self) -> String {
        self.result
            .image
            .config
            .working_dir
            .clone()
            .unwrap_or_else(|| "/".to_string())
    }

    pub fn owner(&self) -> Option<Ownership> {
        let user = self.result.image.config.user.as_deref()?;
        if user.is_empty() {
            return None;
        }
        Some(match user.split_once(':') {
            Some((u, g)) => Ownership {
                user: u.to_string(),
                group: Some(g.to_string()),
            },
            None => Ownership {
                user: user.to_string(),
                group: None,
            },
        })
    }
}

fn fs_changing(kind: &InstructionKind) -> bool {
    matches!(
        kind,
        InstructionKind::Run(_)
            | InstructionKind::Copy(_)
            | InstructionKind::Add(_)
            | InstructionKind::Workdir(_)
    )
}

pub(crate) fn lower_stage(
    lowering: &mut Lowering<'_, '_>,
    stage: &ResolvedStage,
) -> Result<LoweredStage, LowerError> {
    let mut result = lowering.base(&stage.base, stage.start_line)?;
    if result.image.config.env_value("PATH").is_none() {
        result.image.config.set_env("PATH", DEFAULT_PATH);
    }
    // Triggers of a base image run first, and are consumed: the new image has none.
    let triggers = std::mem::take(&mut result.image.config.on_build);
    let trigger_instructions = if triggers.is_empty() {
        Vec::new()
    } else {
        onbuild_instructions(
            lowering,
            &result.image.config.env_pairs(),
            &triggers,
            stage.start_line,
        )?
    };
    let fs_steps = trigger_instructions
        .iter()
        .chain(&stage.instructions)
        .filter(|i| fs_changing(&i.instruction.kind))
        .count();
    let mut state = StageState {
        result,
        label: stage
            .name
            .clone()
            .unwrap_or_else(|| format!("stage-{}", stage.index)),
        args: Vec::new(),
        proxy_env: stage.proxy_env.clone(),
        cmd_set_here: false,
        step: 1,
        steps: 1 + fs_steps,
    };
    for instruction in &trigger_instructions {
        lower_instruction(lowering, &mut state, instruction)?;
    }
    for instruction in &stage.instructions {
        lower_instruction(lowering, &mut state, instruction)?;
    }
    Ok(state.result)
}

/// Base image name used to expand triggers against the inherited ENV.
const TRIGGER_BASE: &str = "kiln-onbuild-base";

/// Parses and expands ONBUILD triggers as if they were written right after the FROM.
fn onbuild_instructions(
    lowering: &Lowering<'_, '_>,
    env: &[(String, String)],
    triggers: &[String],
    line: usize,
) -> Result<Vec<ResolvedInstruction>, LowerError> {
    let text = format!("FROM {TRIGGER_BASE}\n{}\n", triggers.join("\n"));
    let fail = |e: FrontendError| {
        LowerError::at(
            line,
            format!("ONBUILD trigger of the base image: {}", e.message),
        )
    };
    let df = Dockerfile::parse("ONBUILD", &text).map_err(fail)?;
    let mut image_env = HashMap::new();
    image_env.insert(TRIGGER_BASE.to_string(), env.to_vec());
    let options = ResolveOptions {
        build_args: lowering.request.build_args.clone(),
        image_env,
        ..ResolveOptions::default()
    };
    let resolved = df.resolve(&options).map_err(fail)?;
    Ok(resolved
        .stages
        .into_iter()
        .flat_map(|s| s.instructions)
        .collect())
}

fn lower_instruction(
    lowering: &mut Lowering<'_, '_>,
    state: &mut StageState,
    resolved: &ResolvedInstruction,
) -> Result<(), LowerError> {
    let instruction = &resolved.instruction;
    let line = instruction.start_line;
    let config = &mut state.result.image.config;
    match &instruction.kind {
        InstructionKind::From(_) => {}
        InstructionKind::Run(run) => super::run::lower_run(lowering, state, resolved, run)?,
        InstructionKind::Copy(copy) | InstructionKind::Add(copy) => {
            super::copy::lower_copy(lowering, state, resolved, copy)?
        }
        InstructionKind::Workdir(path) => {
            let dir = join_path(&state.workdir(), path);
            state.result.image.config.working_dir = Some(dir.clone());
            let description = state.describe(&instruction.original);
            let owner = state.owner();
            let node = lowering.graph.add(
                Op::File(FileOp {
                    actions: vec![FileAction::Mkdir {
                        path: dir.clone(),
                        mode: 0o755,
                        parents: true,
                        owner,
                    }],
                }),
                vec![state.result.fs],
                description,
            )?;
            state.result.fs = node;
            state
                .result
                .image
                .record(format!("WORKDIR {dir}"), Some(node));
        }
        InstructionKind::Env(pairs) => {
            for KeyValue { key, value, .. } in pairs {
                config.set_env(key, value);
            }
            let text = pairs
                .iter()
                .map(|kv| format!("{}={}", kv.key, kv.value))
                .collect::<Vec<_>>()
                .join(" ");
            state.result.image.record(format!("ENV {text}"), None);
        }
        InstructionKind::Label(pairs) => {
            for KeyValue { key, value, .. } in pairs {
                config.labels.insert(key.clone(), value.clone());
            }
            let text = pairs
                .iter()
                .map(|kv| format!("{}={}", kv.key, kv.value))
                .collect::<Vec<_>>()
                .join(" ");
            state.result.image.record(format!("LABEL {text}"), None);
        }
        InstructionKind::Maintainer(name) => {
            state.result.image.author = Some(name.clone());
            state
                .result
                .image
                .record(format!("MAINTAINER {name}"), None);
        }
        InstructionKind::Expose(ports) => {
            let mut added = Vec::new();
            for port in ports {
                for one in expand_port(port).map_err(|e| LowerError::at(line, e))? {
                    config.exposed_ports.insert(one.clone());
                    added.push(one);
                }
            }
            let text = added
                .iter()
                .map(|p| format!("{p}:{{}}"))
                .collect::<Vec<_>>()
                .join(" ");
            state
                .result
                .image
                .record(format!("EXPOSE map[{text}]"), None);
        }
        InstructionKind::Volume(paths) => {
            for path in paths {
                config.volumes.insert(path.clone());
            }
            state
                .result
                .image
                .record(format!("VOLUME {}", bracketed(paths)), None);
        }
        InstructionKind::User(user) => {
            config.user = Some(user.clone());
            state.result.image.record(format!("USER {user}"), None);
        }
        InstructionKind::Cmd(command) => {
            let args = state.command_args(command);
            state.result.image.config.cmd = Some(args.clone());
            state.cmd_set_here = true;
            state
                .result
                .image
                .record(format!("CMD {}", json_list(&args)), None);
        }
        InstructionKind::Entrypoint(command) => {
            let args = state.command_args(command);
            let config = &mut state.result.image.config;
            config.entrypoint = Some(args.clone());
            if !state.cmd_set_here {
                config.cmd = None;
            }
            state
                .result
                .image
                .record(format!("ENTRYPOINT {}", json_list(&args)), None);
        }
        InstructionKind::StopSignal(signal) => {
            config.stop_signal = Some(signal.clone());
            state
                .result
                .image
                .record(format!("STOPSIGNAL {signal}"), None);
        }
        InstructionKind::Healthcheck(check) => {
            let health = health_config(check);
            let text = health.test.join(" ");
            state.result.image.config.healthcheck = Some(health);
            state
                .result
                .image
                .record(format!("HEALTHCHECK &{{[{text}]}}"), None);
        }
        InstructionKind::Shell(shell) => {
            config.shell = Some(shell.clone());
            state
                .result
                .image
                .record(format!("SHELL {}", json_list(shell)), None);
        }
        InstructionKind::Onbuild(onbuild) => {
            config.on_build.push(onbuild.expression.clone());
            state
                .result
                .image
                .record(format!("ONBUILD {}", onbuild.expression), None);
        }
        InstructionKind::Arg(decls) => {
            for decl in decls {
                state.args.retain(|(name, _)| name != &decl.name);
                if let Some(value) = &decl.default {
                    state.args.push((decl.name.clone(), value.clone()));
                }
            }
        }
    }
    Ok(())
}

fn health_config(check: &Healthcheck) -> HealthConfig {
    let nanos =
        |d: &Option<std::time::Duration>| d.map(|d| d.as_nanos().min(u128::from(u64::MAX)) as u64);
    match check {
        Healthcheck::None => HealthConfig {
            test: vec!["NONE".to_string()],
            ..HealthConfig::default()
        },
        Healthcheck::Cmd {
            test,
            interval,
            timeout,
            start_period,
            start_interval,
            retries,
        } => {
            let test = match test {
                CommandLine::Exec(args) => std::iter::once("CMD".to_string())
                    .chain(args.iter().cloned())
                    .collect(),
                CommandLine::Shell(text) => vec!["CMD-SHELL".to_string(), text.clone()],
            };
            HealthConfig {
                test,
                interval: nanos(interval),
                timeout: nanos(timeout),
                start_period: nanos(start_period),
                start_interval: nanos(start_interval),
                retries: *retries,
            }
        }
    }
}

/// `80` → `80/tcp`; `8000-8002/udp` → each port of the range.
fn expand_port(spec: &str) -> Result<Vec<String>, String> {
    let (ports, proto) = spec.split_once('/').unwrap_or((spec, "tcp"));
    let proto = proto.to_ascii_lowercase();
    let parse = |p: &str| {
        p.parse::<u16>()
            .map_err(|_| format!("invalid port {spec:?} in EXPOSE"))
    };
    let (start, end) = match ports.split_once('-') {
        Some((a, b)) => (parse(a)?, parse(b)?),
        None => {
            let p = parse(ports)?;
            (p, p)
        }
    };
    if end < start {
        return Err(format!(
            "invalid port range {spec:?} in EXPOSE: end before start"
        ));
    }
    Ok((start..=end).map(|p| format!("{p}/{proto}")).collect())
}

fn json_list(items: &[String]) -> String {
    serde_json::to_string(items).unwrap_or_default()
}

fn bracketed(items: &[String]) -> String {
    format!("[{}]", items.join(" "))
}

/// `path` against `base` the way WORKDIR and relative destinations resolve: absolute
/// paths stand alone, `.`/`..` are cleaned, the result is absolute.
pub(crate) fn join_path(base: &str, path: &str) -> String {
    let joined = if path.starts_with('/') {
        path.to_string()
    } else {
        format!("{base}/{path}")
    };
    let mut parts: Vec<&str> = Vec::new();
    for part in joined.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            other => parts.push(other),
        }
    }
    format!("/{}", parts.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_join_and_clean() {
        assert_eq!(join_path("/", "app"), "/app");
        assert_eq!(join_path("/app", "src/../lib/."), "/app/lib");
        assert_eq!(join_path("/app", "/abs"), "/abs");
        assert_eq!(join_path("/a", "../../.."), "/");
    }

    #[test]
    fn ports_expand() {
        assert_eq!(expand_port("80").unwrap(), vec!["80/tcp"]);
        assert_eq!(expand_port("53/UDP").unwrap(), vec!["53/udp"]);
        assert_eq!(expand_port("8000-8002").unwrap().len(), 3);
        assert!(expand_port("x").is_err());
        assert!(expand_port("9-8").is_err());
    }
}
