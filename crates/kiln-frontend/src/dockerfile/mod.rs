//! Dockerfile parsing, typed instructions and the stage model, with BuildKit's
//! (Dockerfile syntax 1.x) behaviour.
//!
//! - [`parse`]: text → raw [`Ast`] (directives, continuations, heredocs, JSON/shell
//!   forms). The fuzz target calls it.
//! - [`Dockerfile::parse`]: text → typed [`Instruction`]s with validated flags, grouped
//!   into global ARGs and [`Stage`]s. Errors are [`FrontendError`]s that render as
//!   `file:line: message`, the source line, a caret and a hint.
//! - [`Dockerfile::resolve`]: apply build args, platforms and `--target` →
//!   [`ResolvedBuild`]: the needed stages in dependency order, bases and expandable
//!   values expanded, with the variables each expansion used.
//! - [`outline::outline`], [`outline::targets`], [`check::check`]: the data behind
//!   `--call=outline`, `--call=targets` and `--check`, in BuildKit's JSON shape, plus
//!   the plain-text renderers.

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
