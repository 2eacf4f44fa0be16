//! Dockerfile parsing, typed instructions and the stage model.
//!
//! - [`parse`]: text → raw [`Ast`] (BuildKit's parser rules; the fuzz target calls it).
//! - [`Dockerfile::parse`]: text → typed instructions grouped into stages.
//! - [`Dockerfile::resolve`]: apply build args and `--target` → [`ResolvedBuild`].
//! - [`outline`], [`targets`], [`check`]: `--call=outline|targets|check` data.

pub mod check;
mod error;
pub mod instructions;
pub mod outline;
pub mod parser;
mod resolve;
mod stages;

pub use error::FrontendError;
pub use instructions::{Instruction, InstructionKind};
pub use parser::{Ast, Heredoc, Node, ParseError, ParseWarning, parse};
pub use resolve::{
    PREDEFINED_ARGS, PROXY_ARGS, Platform, ResolveOptions, ResolvedArg, ResolvedBuild,
    ResolvedInstruction, ResolvedStage, SourceRef, StageBase,
};
pub use stages::{Dockerfile, Stage};
