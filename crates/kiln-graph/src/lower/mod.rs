//! Lowering: a resolved Dockerfile build becomes ops in a [`Graph`] plus the image each
//! stage describes. Stages are lowered on demand from the target, so a stage replaced by
//! a named context, or never reached, adds nothing to the graph.

mod copy;
mod image;
mod run;
mod stage;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

use kiln_frontend::dockerfile::{ResolvedBuild, StageBase};

use crate::{Graph, GraphError, NodeId};

pub use image::{
    DEFAULT_PATH, HISTORY_COMMENT, HealthConfig, HistoryEntry, ImageState, RuntimeConfig,
};

/// A stage's result: its filesystem node and the image it describes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoweredStage {
    pub fs: NodeId,
    /// The image node at the bottom of the filesystem chain, whose layers come first.
    pub base: Option<NodeId>,
    pub image: ImageState,
}

/// An image found by reference: its canonical reference, manifest digest and image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedImage {
    pub reference: String,
    pub digest: String,
    pub image: ImageState,
}

/// Looks up images named by `FROM`, `COPY --from` and `--mount from=`.
pub trait ImageResolver {
    /// `reference` is as written (expanded) or `oci-layout://path[:tag|@digest]`.
    fn resolve_image(&self, reference: &str, platform: &str) -> Result<ResolvedImage, String>;
}

/// What a `--build-context NAME=VALUE` (or a bake `contexts` entry) provides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NamedContext {
    /// A local directory.
    Local(PathBuf),
    /// `docker-image://ref` or `oci-layout://path...`: resolved through the image resolver.
    Image(String),
    /// Another build's result (bake `target:` contexts).
    Stage(Box<LoweredStage>),
}

/// Everything lowering needs besides the resolved build.
pub struct LowerRequest<'a> {
    pub build: &'a ResolvedBuild,
    /// `--build-arg` values: RUN sees the declared ones and the proxy args.
    pub build_args: &'a BTreeMap<String, String>,
    pub named_contexts: &'a BTreeMap<String, NamedContext>,
    pub resolver: &'a dyn ImageResolver,
    /// `os/arch[/variant]` of the images being built.
    pub platform: String,
    /// Name of the main context's local source: its absolute path, so builds of several
    /// contexts in one graph never share it by mistake.
    pub context_name: String,
    /// `.dockerignore` patterns of the main context.
    pub context_excludes: Vec<String>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum LowerError {
    #[error("line {line}: {message}")]
    Instruction { line: usize, message: String },
    #[error("stage {0} is not part of the resolved build")]
    MissingStage(usize),
    #[error(transparent)]
    Graph(#[from] GraphError),
}

impl LowerError {
    pub fn at(line: usize, message: impl Into<String>) -> Self {
        LowerError::Instruction {
            line,
            message: message.into(),
        }
    }

    /// The Dockerfile line the error is about, when there is one.
    pub fn line(&self) -> Option<usize> {
        match self {
            LowerError::Instruction { line, .. } => Some(*line),
            _ => None,
        }
    }
}

/// Lowers the target stage of `request.build` (and whatever it needs) into `graph`.
pub fn lower(graph: &mut Graph, request: &LowerRequest<'_>) -> Result<LoweredStage, LowerError> {
    let mut lowering = Lowering {
        graph,
        request,
        done: HashMap::new(),
    };
    lowering.stage(request.build.target)
}

/// Per-build lowering state: results of the stages lowered so far.
pub(crate) struct Lowering<'g, 'r> {
    pub graph: &'g mut Graph,
    pub request: &'r LowerRequest<'r>,
    done: HashMap<usize, LoweredStage>,
}

impl Lowering<'_, '_> {
    /// The result of stage `index`, lowering it first when needed.
    pub fn stage(&mut self, index: usize) -> Result<LoweredStage, LowerError> {
        if let Some(found) = self.done.get(&index) {
            return Ok(found.clone());
        }
        let build = self.request.build;
        let resolved = build.stage(index).ok_or(LowerError::MissingStage(index))?;
        let lowered = match self.stage_override(index) {
            Some(context) => self.named_context(&context, resolved.start_line)?,
            None => stage::lower_stage(self, resolved)?,
        };
        self.done.insert(index, lowered.clone());
        Ok(lowered)
    }

    /// A named context whose name is this stage's name replaces the stage.
    fn stage_override(&self, index: usize) -> Option<NamedContext> {
        let name = self.request.build.stage(index)?.name.as_deref()?;
        self.request.named_contexts.get(name).cloned()
    }

    pub fn named_context(
        &mut self,
        context: &NamedContext,
        line: usize,
    ) -> Result<LoweredStage, LowerError> {
        match context {
            NamedContext::Stage(stage) => Ok(stage.as_ref().clone()),
            NamedContext::Image(reference) => self.image(reference, line),
            NamedContext::Local(path) => {
                let node = self.graph.add(
                    crate::Op::Local(crate::LocalSource {
                        name: path.display().to_string(),
                        include: vec![],
                        exclude: vec![],
                        content_digest: None,
                    }),
                    vec![],
                    format!("context {}", path.display()),
                )?;
                Ok(LoweredStage {
                    fs: node,
                    base: None,
                    image: ImageState::for_platform(&self.request.platform),
                })
            }
        }
    }

    /// An image by reference; named contexts take precedence over registries and stores.
    pub fn image(&mut self, reference: &str, line: usize) -> Result<LoweredStage, LowerError> {
        if let Some(context) = self.request.named_contexts.get(reference).cloned() {
            return self.named_context(&context, line);
        }
        let platform = self.request.platform.clone();
        let found = self
            .request
            .resolver
            .resolve_image(reference, &platform)
            .map_err(|e| LowerError::at(line, e))?;
        let node = self.graph.add(
            crate::Op::Image(crate::ImageSource {
                reference: found.reference.clone(),
                digest: Some(found.digest.clone()),
                platform,
            }),
            vec![],
            format!("FROM {}", found.reference),
        )?;
        Ok(LoweredStage {
            fs: node,
            base: Some(node),
            image: found.image,
        })
    }

    /// A filesystem holding just one heredoc body as `/NAME`.
    pub fn heredoc_file(
        &mut self,
        name: &str,
        content: &str,
        mode: u32,
    ) -> Result<NodeId, LowerError> {
        let op = crate::Op::File(crate::FileOp {
            actions: vec![crate::FileAction::Mkfile {
                path: format!("/{name}"),
                mode,
                data: content.as_bytes().to_vec(),
                owner: None,
            }],
        });
        Ok(self.graph.add(op, vec![], String::new())?)
    }

    /// A stage's base: scratch, an image, an earlier stage or a named context.
    pub fn base(&mut self, base: &StageBase, line: usize) -> Result<LoweredStage, LowerError> {
        match base {
            StageBase::Scratch => {
                let node = self.graph.add(crate::Op::Scratch, vec![], "FROM scratch")?;
                Ok(LoweredStage {
                    fs: node,
                    base: None,
                    image: ImageState::for_platform(&self.request.platform),
                })
            }
            StageBase::Image(reference) => self.image(reference, line),
            StageBase::Stage(index) => self.stage(*index),
        }
    }
}

#[cfg(test)]
mod tests;
