//! Variable scopes: the predefined and global ARGs, and the variables of one stage.

use super::{ResolveOptions, ResolvedArg, ResolvedInstruction};
use crate::dockerfile::error::InstrError;
use crate::dockerfile::instructions::expand::Expander;
use crate::dockerfile::instructions::{ArgDecl, Instruction, InstructionKind};
use crate::shell::Env;
use std::collections::{BTreeSet, HashMap};

/// Keeps one pair per name: the last value, at the position of the first occurrence.
pub(super) fn dedup_last_wins(pairs: Vec<(String, String)>) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::with_capacity(pairs.len());
    let mut position: HashMap<String, usize> = HashMap::new();
    for (k, v) in pairs {
        match position.get(&k) {
            Some(&i) => out[i].1 = v,
            None => {
                position.insert(k.clone(), out.len());
                out.push((k, v));
            }
        }
    }
    out
}

pub(super) fn predefined_args(opts: &ResolveOptions) -> Vec<(String, String)> {
    let t = &opts.target_platform;
    let b = &opts.build_platform;
    let mut out = vec![
        ("BUILDPLATFORM".to_string(), b.to_string()),
        ("BUILDOS".to_string(), b.os.clone()),
        ("BUILDARCH".to_string(), b.arch.clone()),
        (
            "BUILDVARIANT".to_string(),
            b.variant.clone().unwrap_or_default(),
        ),
        ("TARGETPLATFORM".to_string(), t.to_string()),
        ("TARGETOS".to_string(), t.os.clone()),
        ("TARGETARCH".to_string(), t.arch.clone()),
        (
            "TARGETVARIANT".to_string(),
            t.variant.clone().unwrap_or_default(),
        ),
    ];
    for (k, v) in &mut out {
        if let Some(o) = opts.build_args.get(k.as_str()) {
            *v = o.clone();
        }
    }
    out
}

/// Global variables in scope (predefined and declared) and the global ARGs.
pub(super) type GlobalScope = (Vec<(String, String)>, Vec<ResolvedArg>);

/// Lets a borrowed slice of pairs serve as an expansion environment.
pub(super) struct SliceEnv<'a>(pub(super) &'a [(String, String)]);

impl crate::shell::Env for SliceEnv<'_> {
    fn lookup(&self, name: &str) -> Option<&str> {
        self.0.lookup(name)
    }
}

/// Variables visible inside one stage.
pub(super) struct StageScope {
    /// ENV and ARG values; an ARG with a value replaces an ENV of the same name, as
    /// BuildKit adds both to the same build environment.
    pub(super) vars: Vec<(String, String)>,
    pub(super) image_env: Vec<(String, String)>,
}

impl StageScope {
    pub(super) fn new(inherited: Vec<(String, String)>) -> Self {
        Self {
            vars: inherited.clone(),
            image_env: inherited,
        }
    }

    pub(super) fn set_env(&mut self, key: &str, value: &str) {
        self.vars.push((key.to_string(), value.to_string()));
        self.image_env.push((key.to_string(), value.to_string()));
    }

    pub(super) fn declare_args(
        &mut self,
        instr: &Instruction,
        decls: &[ArgDecl],
        global_scope: &[(String, String)],
        opts: &ResolveOptions,
        escape: char,
    ) -> Result<ResolvedInstruction, InstrError> {
        let mut used = BTreeSet::new();
        let mut unset = BTreeSet::new();
        let mut out = Vec::with_capacity(decls.len());
        for d in decls {
            let value = if let Some(v) = opts.build_args.get(&d.name) {
                Some(v.clone())
            } else if let Some(default) = &d.default {
                let mut ex = Expander::new(escape, &self.vars);
                let v = ex.word(default)?;
                used.extend(ex.used);
                unset.extend(ex.unset);
                Some(v)
            } else {
                global_scope.lookup(&d.name).map(str::to_string)
            };
            if let Some(v) = &value {
                self.vars.push((d.name.clone(), v.clone()));
            }
            out.push(ArgDecl {
                default: value,
                ..d.clone()
            });
        }
        Ok(ResolvedInstruction {
            instruction: Instruction {
                kind: InstructionKind::Arg(out),
                ..instr.clone()
            },
            used_vars: used,
            unset_vars: unset,
            copy_from: None,
            mount_from: Vec::new(),
        })
    }
}
