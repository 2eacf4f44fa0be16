//! COPY and ADD: a file op copying from the context, a stage, an image, a heredoc or a
//! URL onto the stage's filesystem; with `--link`, a copy onto scratch merged on top.

use kiln_frontend::dockerfile::instructions::{Chmod, CopySource, FileCopy, InstructionKind};
use kiln_frontend::dockerfile::{ResolvedInstruction, SourceRef};

use super::run::source_ref;
use super::stage::{StageState, join_path};
use super::{LowerError, Lowering};
use crate::{
    ChmodSpec, CopyAction, FileAction, FileOp, HttpSource, LocalSource, NodeId, Op, Ownership,
};

pub(crate) fn lower_copy(
    lowering: &mut Lowering<'_, '_>,
    state: &mut StageState,
    resolved: &ResolvedInstruction,
    copy: &FileCopy,
) -> Result<(), LowerError> {
    let instruction = &resolved.instruction;
    let line = instruction.start_line;
    let is_add = matches!(instruction.kind, InstructionKind::Add(_));
    let keyword = if is_add { "ADD" } else { "COPY" };

    if copy.sources.len() > 1 && !copy.dest.ends_with('/') {
        return Err(LowerError::at(
            line,
            format!(
                "{keyword} with more than one source needs a directory destination ending with /: {}",
                copy.dest
            ),
        ));
    }
    let dest = destination(&state.workdir(), &copy.dest);
    let owner = copy
        .chown
        .as_deref()
        .filter(|c| !c.is_empty())
        .map(ownership);
    let chmod = match (&copy.chmod_mode, &copy.chmod) {
        (Some(Chmod::Octal(mode)), _) => Some(ChmodSpec::Octal(*mode)),
        (Some(Chmod::Symbolic(_)), Some(text)) => Some(ChmodSpec::Symbolic(text.clone())),
        (None, Some(text)) if !text.is_empty() => {
            return Err(LowerError::at(
                line,
                format!("invalid --chmod value {text:?}"),
            ));
        }
        _ => None,
    };

    // Base of the copy: the stage itself, or scratch when the result is linked on top.
    let mut inputs: Vec<NodeId> = Vec::new();
    if copy.link {
        inputs.push(lowering.graph.add(Op::Scratch, vec![], "")?);
    } else {
        inputs.push(state.result.fs);
    }

    let action_for = |input: usize, sources: Vec<String>, unpack: bool| CopyAction {
        input,
        sources,
        dest: dest.clone(),
        owner: owner.clone(),
        chmod: chmod.clone(),
        exclude: copy.exclude.clone(),
        parents: copy.parents,
        follow_symlinks: true,
        unpack,
        create_dest_path: true,
        allow_wildcard: true,
        allow_empty_wildcard: false,
    };

    let mut actions = Vec::new();
    let mut paths = Vec::new();
    for source in &copy.sources {
        match source {
            CopySource::Heredoc(doc) => {
                let file = lowering.heredoc_file(&doc.name, &doc.content, 0o644)?;
                inputs.push(file);
                actions.push(FileAction::Copy(action_for(
                    inputs.len() - 1,
                    vec![doc.name.clone()],
                    false,
                )));
            }
            CopySource::Path(path) if is_add && is_url(path) => {
                if is_git(path) {
                    return Err(LowerError::at(
                        line,
                        format!(
                            "ADD of a git repository ({path}) is not supported by this version of kiln"
                        ),
                    ));
                }
                let filename = url_filename(path);
                let fetched = lowering.graph.add(
                    Op::Http(HttpSource {
                        url: path.clone(),
                        checksum: copy.checksum.clone(),
                        filename: filename.clone(),
                    }),
                    vec![],
                    format!("ADD {path}"),
                )?;
                inputs.push(fetched);
                let unpack = copy.unpack.unwrap_or(false);
                actions.push(FileAction::Copy(action_for(
                    inputs.len() - 1,
                    vec![filename],
                    unpack,
                )));
            }
            CopySource::Path(path) => paths.push(path.clone()),
        }
    }
    if !paths.is_empty() {
        let root = match (&copy.from, resolved.copy_from.clone()) {
            (Some(written), Some(reference)) => {
                source_ref(lowering, Some(written), reference, line)?.fs
            }
            (Some(written), None) => {
                source_ref(
                    lowering,
                    Some(written),
                    SourceRef::Image(written.clone()),
                    line,
                )?
                .fs
            }
            (None, _) => lowering.graph.add(
                Op::Local(LocalSource {
                    name: lowering.request.context_name.clone(),
                    include: paths.clone(),
                    exclude: lowering.request.context_excludes.clone(),
                    content_digest: None,
                }),
                vec![],
                "context".to_string(),
            )?,
        };
        inputs.push(root);
        let unpack = is_add && copy.from.is_none() && copy.unpack.unwrap_or(true);
        actions.push(FileAction::Copy(action_for(
            inputs.len() - 1,
            paths,
            unpack,
        )));
    }

    let description = state.describe(&instruction.original);
    let copied = lowering
        .graph
        .add(Op::File(FileOp { actions }), inputs, description.clone())?;
    let layer = if copy.link {
        let merged = lowering
            .graph
            .add(Op::Merge, vec![state.result.fs, copied], description)?;
        state.result.fs = merged;
        copied
    } else {
        state.result.fs = copied;
        copied
    };
    let shown: Vec<String> = copy
        .sources
        .iter()
        .map(|s| match s {
            CopySource::Path(p) => p.clone(),
            CopySource::Heredoc(d) => format!("<<{}", d.name),
        })
        .collect();
    state.result.image.record(
        format!("{keyword} {} {} # buildkit", shown.join(" "), copy.dest),
        Some(layer),
    );
    Ok(())
}

/// The destination against WORKDIR, keeping a trailing slash (it means "into directory").
fn destination(workdir: &str, dest: &str) -> String {
    let joined = join_path(workdir, dest);
    let into_dir = dest.ends_with('/') || dest == "." || dest.ends_with("/.");
    if into_dir && joined != "/" {
        format!("{joined}/")
    } else {
        joined
    }
}

fn ownership(chown: &str) -> Ownership {
    match chown.split_once(':') {
        Some((user, group)) => Ownership {
            user: user.to_string(),
            group: Some(group.to_string()),
        },
        None => Ownership {
            user: chown.to_string(),
            group: None,
        },
    }
}

fn is_url(path: &str) -> bool {
    path.starts_with("http://") || path.starts_with("https://") || path.starts_with("git@")
}

fn is_git(path: &str) -> bool {
    path.starts_with("git@")
        || path
            .split(['?', '#'])
            .next()
            .is_some_and(|p| p.ends_with(".git"))
}

/// The last path segment of a URL, or `index.html` when it has none (as BuildKit names it).
fn url_filename(url: &str) -> String {
    let without_query = url.split(['?', '#']).next().unwrap_or(url);
    let path = without_query
        .split_once("://")
        .map_or(without_query, |(_, rest)| rest);
    match path.split_once('/') {
        Some((_, p)) => p
            .rsplit('/')
            .find(|s| !s.is_empty())
            .unwrap_or("index.html")
            .to_string(),
        None => "index.html".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn destinations() {
        assert_eq!(destination("/app", "."), "/app/");
        assert_eq!(destination("/app", "bin/"), "/app/bin/");
        assert_eq!(destination("/app", "/etc/conf"), "/etc/conf");
        assert_eq!(destination("/", "./"), "/");
    }

    #[test]
    fn urls() {
        assert_eq!(
            url_filename("https://example.com/a/b.tar.gz?x=1"),
            "b.tar.gz"
        );
        assert_eq!(url_filename("https://example.com"), "index.html");
        assert!(is_git("https://github.com/x/y.git"));
        assert!(!is_git("https://example.com/y.tar"));
        assert_eq!(ownership("app:staff").group.as_deref(), Some("staff"));
    }
}
