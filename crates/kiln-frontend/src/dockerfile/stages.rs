//! A Dockerfile as global ARGs plus build stages.

use super::error::{FrontendError, InstrError, SourceText};
use super::instructions::{self, Instruction, InstructionKind};
use super::parser::{self, Directives, ParseWarning};

/// A parsed and validated Dockerfile.
#[derive(Debug, Clone)]
pub struct Dockerfile {
    /// The label errors use for the file (usually its path).
    pub file: String,
    pub source: String,
    pub escape: char,
    pub directives: Directives,
    /// `ARG` instructions before the first `FROM`.
    pub global_args: Vec<Instruction>,
    pub stages: Vec<Stage>,
    pub warnings: Vec<ParseWarning>,
}

/// One `FROM` and the instructions up to the next.
#[derive(Debug, Clone)]
pub struct Stage {
    pub index: usize,
    /// Lower-cased `AS` name.
    pub name: Option<String>,
    /// The FROM instruction (always [`InstructionKind::From`]).
    pub from: Instruction,
    pub instructions: Vec<Instruction>,
    /// From a comment line `# <name> <description>` above the FROM.
    pub description: String,
}

impl Stage {
    pub fn from_instr(&self) -> Option<&instructions::FromInstr> {
        match &self.from.kind {
            InstructionKind::From(f) => Some(f),
            _ => None,
        }
    }

    /// `name` when the stage has one, else its index.
    pub fn display_name(&self) -> String {
        self.name.clone().unwrap_or_else(|| self.index.to_string())
    }

    pub fn end_line(&self) -> usize {
        self.instructions
            .last()
            .map_or(self.from.end_line, |i| i.end_line)
    }
}

impl Dockerfile {
    /// Parses and types every instruction. Errors name `file_label` and the line.
    pub fn parse(file_label: &str, src: &str) -> Result<Dockerfile, FrontendError> {
        let text = SourceText {
            file: file_label,
            src,
        };
        let ast = parser::parse(src).map_err(|e| {
            let mut err = InstrError::new(e.message);
            err.needle = e.needle;
            text.error(e.start_line, e.end_line, err)
        })?;
        let mut global_args = Vec::new();
        let mut stages: Vec<Stage> = Vec::new();
        // Stage name → index, for duplicate detection.
        let mut seen: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
        let last_line = ast.nodes.last().map_or(1, |n| n.end_line);
        for node in ast.nodes {
            let (start_line, end_line) = (node.start_line, node.end_line);
            let instr =
                instructions::from_node(node).map_err(|e| text.error(start_line, end_line, e))?;
            if let InstructionKind::From(from) = &instr.kind {
                if let Some(name) = &from.stage_name
                    && let Some(previous) = seen.get(name).and_then(|&i| stages.get(i))
                {
                    let err = InstrError::new(format!("duplicate stage name {name:?}"))
                        .at(from.stage_name_as_written.clone().unwrap_or_default())
                        .hint(format!(
                            "stage {name:?} is already defined on line {}",
                            previous.from.start_line
                        ));
                    return Err(text.error(start_line, end_line, err));
                }
                // Like BuildKit, the comment must start with the lower-cased stage name.
                let description = instructions::parse::comment_for(
                    &instr.comments,
                    from.stage_name.as_deref().unwrap_or_default(),
                );
                if let Some(name) = &from.stage_name {
                    seen.insert(name.clone(), stages.len());
                }
                stages.push(Stage {
                    index: stages.len(),
                    name: from.stage_name.clone(),
                    from: instr,
                    instructions: Vec::new(),
                    description,
                });
                continue;
            }
            match stages.last_mut() {
                Some(stage) => stage.instructions.push(instr),
                None if matches!(instr.kind, InstructionKind::Arg(_)) => global_args.push(instr),
                None => {
                    let err = InstrError::new("no build stage in current context")
                        .at(instr.keyword.clone())
                        .hint("only ARG may come before the first FROM");
                    return Err(text.error(start_line, end_line, err));
                }
            }
        }
        if stages.is_empty() {
            return Err(text.error(
                last_line,
                last_line,
                InstrError::new("the Dockerfile has no FROM instruction")
                    .hint("every build needs at least one stage: FROM <image>"),
            ));
        }
        Ok(Dockerfile {
            file: file_label.to_string(),
            source: src.to_string(),
            escape: ast.escape,
            directives: ast.directives,
            global_args,
            stages,
            warnings: ast.warnings,
        })
    }

    /// The stage called `name` (case-insensitive).
    pub fn stage_by_name(&self, name: &str) -> Option<&Stage> {
        let lower = name.to_ascii_lowercase();
        self.stages
            .iter()
            .find(|s| s.name.as_deref() == Some(lower.as_str()))
    }

    pub(crate) fn source_text(&self) -> SourceText<'_> {
        SourceText {
            file: &self.file,
            src: &self.source,
        }
    }
}
