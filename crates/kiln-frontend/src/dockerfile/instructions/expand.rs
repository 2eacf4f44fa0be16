//! Variable expansion of instruction values, following which instructions and flags
//! BuildKit expands (RUN, CMD, ENTRYPOINT, SHELL and HEALTHCHECK are left to the shell).

use super::values::{parse_chmod, parse_port, validate_checksum, validate_signal};
use super::*;
use crate::dockerfile::error::InstrError;
use crate::shell::{Env, Lexer};
use std::collections::BTreeSet;

/// Expands words against one environment and records which variables were looked up.
pub struct Expander<'a> {
    lexer: Lexer,
    env: &'a dyn Env,
    /// Variables referenced and set.
    pub used: BTreeSet<String>,
    /// Variables referenced but not set.
    pub unset: BTreeSet<String>,
}

impl<'a> Expander<'a> {
    pub fn new(escape: char, env: &'a dyn Env) -> Self {
        Self {
            lexer: Lexer::new(escape),
            env,
            used: BTreeSet::new(),
            unset: BTreeSet::new(),
        }
    }

    /// Text the lexer would return unchanged: no variable, quote or escape.
    fn is_literal(&self, text: &str) -> bool {
        !text.contains(['$', '\'', '"', self.lexer.escape])
    }

    /// Expands one word (quotes removed, no splitting).
    pub fn word(&mut self, text: &str) -> Result<String, InstrError> {
        if self.is_literal(text) {
            return Ok(text.to_string());
        }
        let out = self.lexer.expand_word(text, self.env).map_err(|e| {
            InstrError::new(format!("failed to process {text:?}: {}", e.message))
                .at(text.to_string())
        })?;
        self.used.extend(out.used);
        self.unset.extend(out.unset);
        Ok(out.value)
    }

    /// Expands and splits into words.
    pub fn words(&mut self, text: &str) -> Result<Vec<String>, InstrError> {
        if self.is_literal(text) {
            return Ok(text.split_whitespace().map(str::to_string).collect());
        }
        let out = self
            .lexer
            .expand_words_tracked(text, self.env)
            .map_err(|e| {
                InstrError::new(format!("failed to process {text:?}: {}", e.message))
                    .at(text.to_string())
            })?;
        self.used.extend(out.used);
        self.unset.extend(out.unset);
        Ok(out.words)
    }

    /// Expands a heredoc body: variables only, quotes are ordinary text.
    pub fn heredoc(&mut self, text: &str) -> Result<String, InstrError> {
        let lexer = self.lexer.with_skip_quotes(true);
        let out = lexer
            .expand_word(text, self.env)
            .map_err(|e| InstrError::new(format!("failed to expand heredoc: {}", e.message)))?;
        self.used.extend(out.used);
        self.unset.extend(out.unset);
        Ok(out.value)
    }

    fn opt(&mut self, text: &Option<String>) -> Result<Option<String>, InstrError> {
        text.as_deref().map(|t| self.word(t)).transpose()
    }
}

/// Returns the instruction with its expandable values expanded and re-validated.
/// `FROM` is expanded by the stage model (it uses the global scope), ARG defaults by the
/// ARG logic; both are returned unchanged here.
pub fn expand_instruction(
    instr: &Instruction,
    ex: &mut Expander<'_>,
) -> Result<Instruction, InstrError> {
    let kind = match &instr.kind {
        InstructionKind::Run(run) => InstructionKind::Run(expand_run(run, ex)?),
        InstructionKind::Env(pairs) => InstructionKind::Env(expand_pairs(pairs, ex)?),
        InstructionKind::Label(pairs) => InstructionKind::Label(expand_pairs(pairs, ex)?),
        InstructionKind::Expose(ports) => {
            let mut out = Vec::new();
            for p in ports {
                out.extend(ex.words(p)?);
            }
            for p in &out {
                parse_port(p).map_err(|e| InstrError::new(e).at(p.clone()))?;
            }
            InstructionKind::Expose(out)
        }
        InstructionKind::Add(c) => InstructionKind::Add(expand_copy(c, ex)?),
        InstructionKind::Copy(c) => InstructionKind::Copy(expand_copy(c, ex)?),
        InstructionKind::Volume(v) => {
            InstructionKind::Volume(v.iter().map(|w| ex.word(w)).collect::<Result<_, _>>()?)
        }
        InstructionKind::User(u) => InstructionKind::User(ex.word(u)?),
        InstructionKind::Workdir(w) => InstructionKind::Workdir(ex.word(w)?),
        InstructionKind::StopSignal(s) => {
            let s = ex.word(s)?;
            validate_signal(&s).map_err(|e| InstrError::new(e).at(s.clone()))?;
            InstructionKind::StopSignal(s)
        }
        other => other.clone(),
    };
    Ok(Instruction {
        kind,
        keyword: instr.keyword.clone(),
        original: instr.original.clone(),
        start_line: instr.start_line,
        end_line: instr.end_line,
        comments: instr.comments.clone(),
    })
}

fn expand_pairs(pairs: &[KeyValue], ex: &mut Expander<'_>) -> Result<Vec<KeyValue>, InstrError> {
    pairs
        .iter()
        .map(|kv| {
            Ok(KeyValue {
                key: ex.word(&kv.key)?,
                value: ex.word(&kv.value)?,
                legacy: kv.legacy,
            })
        })
        .collect()
}

fn expand_run(run: &RunInstr, ex: &mut Expander<'_>) -> Result<RunInstr, InstrError> {
    let mut mounts = Vec::with_capacity(run.mount_specs.len());
    for (i, spec) in run.mount_specs.iter().enumerate() {
        // Without variables the mount parsed with the instruction is already final.
        if !spec.contains('$')
            && let Some(parsed) = run.mounts.get(i)
        {
            mounts.push(parsed.clone());
            continue;
        }
        let mut expand = |v: &str| ex.word(v).map_err(|e| e.message);
        let m = mount::parse_mount(spec, &mut expand)
            .map_err(|e| InstrError::new(e).at(spec.clone()))?;
        mounts.push(m);
    }
    Ok(RunInstr {
        mounts,
        ..run.clone()
    })
}

fn expand_copy(c: &FileCopy, ex: &mut Expander<'_>) -> Result<FileCopy, InstrError> {
    let mut sources = Vec::with_capacity(c.sources.len());
    for s in &c.sources {
        sources.push(match s {
            CopySource::Path(p) => CopySource::Path(ex.word(p)?),
            CopySource::Heredoc(h) if h.expand => CopySource::Heredoc(InlineFile {
                content: ex.heredoc(&h.content)?,
                ..h.clone()
            }),
            CopySource::Heredoc(h) => CopySource::Heredoc(h.clone()),
        });
    }
    let chmod = ex.opt(&c.chmod)?;
    let chmod_mode = chmod
        .as_deref()
        .map(|m| {
            parse_chmod(m).map_err(|e| InstrError::new(e).at(c.chmod.clone().unwrap_or_default()))
        })
        .transpose()?;
    let checksum = ex.opt(&c.checksum)?;
    if let Some(sum) = &checksum {
        validate_checksum(sum).map_err(|e| InstrError::new(e).at(sum.clone()))?;
    }
    Ok(FileCopy {
        sources,
        dest: ex.word(&c.dest)?,
        chown: ex.opt(&c.chown)?,
        chmod,
        chmod_mode,
        checksum,
        ..c.clone()
    })
}
