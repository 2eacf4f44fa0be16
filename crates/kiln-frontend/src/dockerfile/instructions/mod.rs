//! Typed Dockerfile instructions with validated flags.
//!
//! Values are kept as written (variables unexpanded); `Dockerfile::resolve` produces the
//! expanded copy of each instruction once the variables in scope are known.

pub(crate) mod expand;
pub(crate) mod flags;
pub mod mount;
pub(crate) mod parse;
pub mod values;

use crate::dockerfile::parser::Heredoc;
use serde::Serialize;
use std::time::Duration;

pub use mount::{CacheSharing, Mount, MountType};
pub(crate) use parse::from_node;
pub use values::{Chmod, PortSpec, Protocol, SymbolicClause};

/// One instruction with where it came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Instruction {
    pub kind: InstructionKind,
    /// The keyword as written (for casing checks).
    pub keyword: String,
    /// The logical line as written.
    pub original: String,
    pub start_line: usize,
    pub end_line: usize,
    /// Comment lines directly above the instruction.
    pub comments: Vec<String>,
}

impl Instruction {
    /// The instruction name in upper case (`COPY`).
    pub fn name(&self) -> &'static str {
        self.kind.name()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "instruction", content = "args", rename_all = "lowercase")]
pub enum InstructionKind {
    From(FromInstr),
    Run(RunInstr),
    Cmd(CommandLine),
    Entrypoint(CommandLine),
    Label(Vec<KeyValue>),
    Maintainer(String),
    Expose(Vec<String>),
    Env(Vec<KeyValue>),
    Add(FileCopy),
    Copy(FileCopy),
    Volume(Vec<String>),
    User(String),
    Workdir(String),
    Arg(Vec<ArgDecl>),
    Onbuild(Onbuild),
    StopSignal(String),
    Healthcheck(Healthcheck),
    Shell(Vec<String>),
}

impl InstructionKind {
    pub fn name(&self) -> &'static str {
        match self {
            Self::From(_) => "FROM",
            Self::Run(_) => "RUN",
            Self::Cmd(_) => "CMD",
            Self::Entrypoint(_) => "ENTRYPOINT",
            Self::Label(_) => "LABEL",
            Self::Maintainer(_) => "MAINTAINER",
            Self::Expose(_) => "EXPOSE",
            Self::Env(_) => "ENV",
            Self::Add(_) => "ADD",
            Self::Copy(_) => "COPY",
            Self::Volume(_) => "VOLUME",
            Self::User(_) => "USER",
            Self::Workdir(_) => "WORKDIR",
            Self::Arg(_) => "ARG",
            Self::Onbuild(_) => "ONBUILD",
            Self::StopSignal(_) => "STOPSIGNAL",
            Self::Healthcheck(_) => "HEALTHCHECK",
            Self::Shell(_) => "SHELL",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FromInstr {
    /// Image reference or stage name, as written.
    pub base: String,
    /// Stage name in lower case.
    pub stage_name: Option<String>,
    /// Stage name as written (for the casing check).
    pub stage_name_as_written: Option<String>,
    /// The `AS` keyword as written.
    pub as_keyword: Option<String>,
    pub platform: Option<String>,
}

/// Exec form (`["a","b"]`) or shell form (`a b`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "form", content = "value", rename_all = "lowercase")]
pub enum CommandLine {
    Exec(Vec<String>),
    Shell(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum NetworkMode {
    #[default]
    Default,
    None,
    Host,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SecurityMode {
    #[default]
    Sandbox,
    Insecure,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RunInstr {
    pub command: CommandLine,
    /// Heredocs of the line; when the shell-form command is just `<<EOF`, the first one is
    /// the script itself.
    pub heredocs: Vec<InlineFile>,
    pub mounts: Vec<Mount>,
    /// The `--mount` values as written, re-parsed after expansion.
    pub mount_specs: Vec<String>,
    pub network: NetworkMode,
    pub security: SecurityMode,
}

/// A heredoc body as typed instructions carry it: a file written inline (content
/// already chomped for `<<-`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InlineFile {
    pub name: String,
    pub content: String,
    pub expand: bool,
    pub fd: Option<u32>,
}

impl From<&Heredoc> for InlineFile {
    fn from(h: &Heredoc) -> Self {
        Self {
            name: h.name.clone(),
            content: h.chomped_content(),
            expand: h.expand,
            fd: h.fd,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeyValue {
    pub key: String,
    pub value: String,
    /// Written in the legacy `ENV key value` form.
    pub legacy: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ArgDecl {
    pub name: String,
    pub default: Option<String>,
    /// From a comment line `# NAME description` directly above.
    pub description: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "value", rename_all = "lowercase")]
pub enum CopySource {
    Path(String),
    Heredoc(InlineFile),
}

/// COPY and ADD (ADD-only and COPY-only flags are rejected by the parser).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FileCopy {
    pub sources: Vec<CopySource>,
    pub dest: String,
    /// COPY only: stage name, stage index or image.
    pub from: Option<String>,
    pub chown: Option<String>,
    pub chmod: Option<String>,
    /// `chmod` parsed; `None` while it still holds variables.
    pub chmod_mode: Option<Chmod>,
    pub link: bool,
    /// COPY only.
    pub parents: bool,
    pub exclude: Vec<String>,
    /// ADD only.
    pub checksum: Option<String>,
    pub keep_git_dir: Option<bool>,
    pub unpack: Option<bool>,
    /// Whether the arguments were a JSON array.
    pub json: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Onbuild {
    /// The trigger text stored in the image.
    pub expression: String,
    pub trigger: Box<Instruction>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Healthcheck {
    /// `HEALTHCHECK NONE`.
    None,
    Cmd {
        test: CommandLine,
        interval: Option<Duration>,
        timeout: Option<Duration>,
        start_period: Option<Duration>,
        start_interval: Option<Duration>,
        retries: Option<u32>,
    },
}

/// All instruction keywords, for suggestions and casing checks.
pub const KEYWORDS: &[&str] = &[
    "ADD",
    "ARG",
    "CMD",
    "COPY",
    "ENTRYPOINT",
    "ENV",
    "EXPOSE",
    "FROM",
    "HEALTHCHECK",
    "LABEL",
    "MAINTAINER",
    "ONBUILD",
    "RUN",
    "SHELL",
    "STOPSIGNAL",
    "USER",
    "VOLUME",
    "WORKDIR",
];

#[cfg(test)]
mod tests;
