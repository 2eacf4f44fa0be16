//! RUN: an exec op on the stage's filesystem with its mounts.

use kiln_frontend::dockerfile::instructions::mount::{CacheSharing as FrontSharing, MountType};
use kiln_frontend::dockerfile::instructions::{
    CommandLine, NetworkMode as FrontNetwork, RunInstr, SecurityMode as FrontSecurity,
};
use kiln_frontend::dockerfile::{ResolvedInstruction, SourceRef};

use super::stage::{StageState, join_path};
use super::{LowerError, LoweredStage, Lowering};
use crate::{
    CacheSharing, ExecMount, ExecOp, LocalSource, MountKind, NetworkMode, NodeId, Op, SecurityMode,
};

/// Where heredoc scripts with a shebang are mounted to be executed.
const HEREDOC_DIR: &str = "/dev/pipes";

pub(crate) fn lower_run(
    lowering: &mut Lowering<'_, '_>,
    state: &mut StageState,
    resolved: &ResolvedInstruction,
    run: &RunInstr,
) -> Result<(), LowerError> {
    let line = resolved.instruction.start_line;
    let mut inputs = vec![state.result.fs];
    let mut mounts = Vec::new();
    let args = command(lowering, state, run, &mut inputs, &mut mounts)?;
    for (index, mount) in run.mounts.iter().enumerate() {
        let from = resolved.mount_from.get(index).cloned().flatten();
        mounts.push(exec_mount(lowering, state, mount, from, &mut inputs, line)?);
    }

    let config = &state.result.image.config;
    let mut env = config.env.clone();
    for (name, value) in state.args.iter().chain(state.proxy_env.iter()) {
        if config.env_value(name).is_none()
            && !env
                .iter()
                .any(|kv| kv.split_once('=').map(|(k, _)| k) == Some(name))
        {
            env.push(format!("{name}={value}"));
        }
    }
    let exec = ExecOp {
        args: args.clone(),
        env,
        cwd: state.workdir(),
        user: config.user.clone().unwrap_or_default(),
        network: match run.network {
            FrontNetwork::Default => NetworkMode::Default,
            FrontNetwork::None => NetworkMode::None,
            FrontNetwork::Host => NetworkMode::Host,
        },
        security: match run.security {
            FrontSecurity::Sandbox => SecurityMode::Sandbox,
            FrontSecurity::Insecure => SecurityMode::Insecure,
        },
        mounts,
    };
    let description = state.describe(&resolved.instruction.original);
    let node = lowering.graph.add(Op::Exec(exec), inputs, description)?;
    state.result.fs = node;

    // History shows the declared build args the command saw (never proxy args).
    let shown: Vec<String> = state.args.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let prefix = if shown.is_empty() {
        String::new()
    } else {
        format!("|{} {} ", shown.len(), shown.join(" "))
    };
    state.result.image.record(
        format!("RUN {prefix}{} # buildkit", args.join(" ")),
        Some(node),
    );
    Ok(())
}

/// The process arguments, handling heredoc scripts.
fn command(
    lowering: &mut Lowering<'_, '_>,
    state: &StageState,
    run: &RunInstr,
    inputs: &mut Vec<NodeId>,
    mounts: &mut Vec<ExecMount>,
) -> Result<Vec<String>, LowerError> {
    let text = match &run.command {
        CommandLine::Exec(args) => return Ok(args.clone()),
        CommandLine::Shell(text) => text,
    };
    let only_heredoc = run.heredocs.len() == 1 && is_lone_heredoc(text);
    if let (true, Some(doc)) = (only_heredoc, run.heredocs.first()) {
        if doc.content.starts_with("#!") {
            // A script with a shebang runs as a file, so its interpreter is honoured.
            let file = lowering.heredoc_file(&doc.name, &doc.content, 0o755)?;
            inputs.push(file);
            mounts.push(ExecMount {
                target: HEREDOC_DIR.to_string(),
                kind: MountKind::Bind {
                    input: inputs.len() - 1,
                    source: "/".to_string(),
                    readwrite: false,
                },
            });
            return Ok(vec![format!("{HEREDOC_DIR}/{}", doc.name)]);
        }
        let mut args = state.shell();
        args.push(doc.content.clone());
        return Ok(args);
    }
    // Anything else is one shell script with its heredocs inline; the shell reads them.
    let mut script = text.clone();
    for doc in &run.heredocs {
        script.push('\n');
        script.push_str(&doc.content);
        if !doc.content.ends_with('\n') && !doc.content.is_empty() {
            script.push('\n');
        }
        script.push_str(&doc.name);
    }
    let mut args = state.shell();
    args.push(script);
    Ok(args)
}

/// `<<EOF`, `<<-EOF`, `<<"EOF"`, `<<'EOF'` with nothing else on the line.
fn is_lone_heredoc(text: &str) -> bool {
    let Some(rest) = text.trim().strip_prefix("<<") else {
        return false;
    };
    let rest = rest.strip_prefix('-').unwrap_or(rest);
    let word = rest.trim_matches(|c| c == '"' || c == '\'');
    !word.is_empty() && word.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn exec_mount(
    lowering: &mut Lowering<'_, '_>,
    state: &StageState,
    mount: &kiln_frontend::dockerfile::instructions::Mount,
    from: Option<SourceRef>,
    inputs: &mut Vec<NodeId>,
    line: usize,
) -> Result<ExecMount, LowerError> {
    let default_target = || match mount.kind {
        MountType::Secret => mount.effective_id().map(|id| format!("/run/secrets/{id}")),
        MountType::Ssh => Some("/run/buildkit/ssh_agent.0".to_string()),
        _ => None,
    };
    let target = mount
        .target
        .clone()
        .or_else(default_target)
        .ok_or_else(|| {
            LowerError::at(
                line,
                format!("--mount=type={} needs target=PATH", mount.kind.as_str()),
            )
        })?;
    let target = join_path(&state.workdir(), &target);
    let kind = match mount.kind {
        MountType::Bind => {
            let source_root = mount_source(lowering, mount, from, line)?;
            inputs.push(source_root.fs);
            MountKind::Bind {
                input: inputs.len() - 1,
                source: mount.source.clone().unwrap_or_else(|| "/".to_string()),
                readwrite: !mount.read_only,
            }
        }
        MountType::Cache => {
            let seed = match (&mount.from, from) {
                (Some(_), Some(reference)) => {
                    let root = source_ref(lowering, mount.from.as_deref(), reference, line)?;
                    inputs.push(root.fs);
                    Some((
                        inputs.len() - 1,
                        mount.source.clone().unwrap_or_else(|| "/".to_string()),
                    ))
                }
                _ => None,
            };
            MountKind::Cache {
                id: mount.id.clone().unwrap_or_else(|| target.clone()),
                sharing: match mount.sharing {
                    FrontSharing::Shared => CacheSharing::Shared,
                    FrontSharing::Private => CacheSharing::Private,
                    FrontSharing::Locked => CacheSharing::Locked,
                },
                mode: mount.mode.unwrap_or(0o755),
                uid: mount.uid.unwrap_or(0),
                gid: mount.gid.unwrap_or(0),
                seed,
                readonly: mount.read_only,
            }
        }
        MountType::Tmpfs => MountKind::Tmpfs { size: mount.size },
        MountType::Secret => MountKind::Secret {
            id: mount.effective_id().unwrap_or_default(),
            env: mount.env.clone(),
            required: mount.required,
            mode: mount.mode.unwrap_or(0o400),
            uid: mount.uid.unwrap_or(0),
            gid: mount.gid.unwrap_or(0),
        },
        MountType::Ssh => MountKind::Ssh {
            id: mount
                .effective_id()
                .unwrap_or_else(|| "default".to_string()),
            required: mount.required,
            mode: mount.mode.unwrap_or(0o600),
            uid: mount.uid.unwrap_or(0),
            gid: mount.gid.unwrap_or(0),
        },
    };
    Ok(ExecMount { target, kind })
}

/// The filesystem a bind mount reads: a stage, an image, a named context or the context.
fn mount_source(
    lowering: &mut Lowering<'_, '_>,
    mount: &kiln_frontend::dockerfile::instructions::Mount,
    from: Option<SourceRef>,
    line: usize,
) -> Result<LoweredStage, LowerError> {
    match from {
        Some(reference) => source_ref(lowering, mount.from.as_deref(), reference, line),
        None => {
            let node = lowering.graph.add(
                Op::Local(LocalSource {
                    name: lowering.request.context_name.clone(),
                    include: vec![],
                    exclude: lowering.request.context_excludes.clone(),
                    content_digest: None,
                }),
                vec![],
                "context".to_string(),
            )?;
            Ok(LoweredStage {
                fs: node,
                base: None,
                image: super::ImageState::for_platform(&lowering.request.platform),
            })
        }
    }
}

/// A `--from` value: a named context (by the name as written) wins over stages and images.
pub(crate) fn source_ref(
    lowering: &mut Lowering<'_, '_>,
    written: Option<&str>,
    reference: SourceRef,
    line: usize,
) -> Result<LoweredStage, LowerError> {
    if let Some(context) = written
        .and_then(|name| lowering.request.named_contexts.get(name))
        .cloned()
    {
        return lowering.named_context(&context, line);
    }
    match reference {
        SourceRef::Stage(index) => lowering.stage(index),
        SourceRef::Image(image) => lowering.image(&image, line),
    }
}

#[cfg(test)]
mod tests {
    use super::is_lone_heredoc;

    #[test]
    fn lone_heredoc_forms() {
        assert!(is_lone_heredoc("<<EOF"));
        assert!(is_lone_heredoc(" <<-EOT "));
        assert!(is_lone_heredoc("<<\"EOF\""));
        assert!(!is_lone_heredoc("cat <<EOF"));
        assert!(!is_lone_heredoc("<<EOF > /x"));
    }
}
