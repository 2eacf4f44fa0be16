//! Our HCL evaluator: walks hcl-edit's AST and produces [`Value`]s.
//!
//! Global names (variables, top-level attributes, `target.x.y` references,
//! user functions) are resolved lazily by the document layer and memoized,
//! so a reference never re-evaluates its expression.

mod expr;
mod ops;
mod template;

pub use ops::values_equal;

use std::collections::{BTreeMap, HashMap, HashSet};

use hcl_edit::Span;
use hcl_edit::expr::Expression;

use crate::error::{BakeError, DiagKind, Diagnostic, Pos};
use crate::value::{Type, Value};

/// One source file, kept for mapping byte offsets to line and column.
#[derive(Debug, Clone)]
pub struct Source {
    pub name: String,
    pub text: String,
    line_starts: Vec<usize>,
    /// For text generated from another file (JSON): the original text and,
    /// per generated line, the original offset it came from.
    origin: Option<(Box<Source>, Vec<usize>)>,
}

impl Source {
    pub fn new(name: impl Into<String>, text: impl Into<String>) -> Self {
        let text = text.into();
        let mut line_starts = vec![0];
        line_starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        Source {
            name: name.into(),
            text,
            line_starts,
            origin: None,
        }
    }

    /// A source generated from `original`; positions map back through `line_origins`.
    pub fn translated(
        name: impl Into<String>,
        text: impl Into<String>,
        original: &str,
        line_origins: Vec<usize>,
    ) -> Self {
        let name = name.into();
        let mut source = Source::new(name.clone(), text);
        source.origin = Some((Box::new(Source::new(name, original)), line_origins));
        source
    }

    pub fn pos(&self, offset: usize) -> Pos {
        let line = self.line_starts.partition_point(|&s| s <= offset).max(1);
        if let Some((original, origins)) = &self.origin {
            return original.pos(origins.get(line - 1).copied().unwrap_or(0));
        }
        let start = self.line_starts[line - 1];
        let col = self
            .text
            .get(start..offset.min(self.text.len()))
            .map_or(1, |s| s.chars().count() + 1);
        Pos {
            file: self.name.clone(),
            line,
            col,
        }
    }
}

/// A user `function` block.
#[derive(Debug, Clone)]
pub struct UserFunc<'s> {
    pub file: usize,
    pub params: Vec<String>,
    pub variadic: Option<String>,
    pub result: &'s Expression,
}

/// A global name: a `variable` block or a top-level attribute.
#[derive(Debug, Clone)]
pub struct GlobalDef<'s> {
    pub file: usize,
    pub kind: GlobalKind<'s>,
}

#[derive(Debug, Clone)]
pub enum GlobalKind<'s> {
    Variable(VariableDef<'s>),
    Attribute(&'s Expression),
    /// A value supplied from outside (built-ins, `--var`, defaults).
    Fixed(Value),
}

#[derive(Debug, Clone, Default)]
pub struct VariableDef<'s> {
    pub name: String,
    pub default: Option<&'s Expression>,
    pub type_expr: Option<&'s Expression>,
    pub description: Option<String>,
    pub validations: Vec<(usize, &'s Expression, Option<&'s Expression>)>,
    pub block_pos: Pos,
}

/// A labelled block that `target.NAME.ATTR` style references can reach.
#[derive(Debug, Clone)]
pub struct BlockInstance<'s> {
    pub file: usize,
    pub body: &'s hcl_edit::structure::Body,
    /// Matrix values (and other block-local names) visible in the body.
    pub locals: Vec<(String, Value)>,
}

/// Evaluation state shared by every expression in a bake file set.
pub struct Session<'s> {
    pub sources: &'s [Source],
    pub cur_file: usize,
    pub locals: Vec<(String, Value)>,
    pub diags: Vec<Diagnostic>,
    pub globals: HashMap<String, GlobalDef<'s>>,
    pub global_values: HashMap<String, Value>,
    pub global_in_progress: HashSet<String>,
    pub funcs: HashMap<String, UserFunc<'s>>,
    pub func_depth: usize,
    /// kind ("target"/"group") -> block name -> instances in file order.
    pub blocks: HashMap<String, BTreeMap<String, Vec<BlockInstance<'s>>>>,
    pub block_attr_values: HashMap<(String, String, String), Value>,
    pub block_in_progress: HashSet<(String, String, String)>,
    /// Environment consulted for variable overrides.
    pub env: BTreeMap<String, String>,
    pub env_lookup: bool,
    /// `--var NAME=VALUE` overrides; they win over the environment.
    pub cli_vars: BTreeMap<String, String>,
    /// (kind, name, instance index, attribute) -> value.
    pub instance_attr_values: HashMap<(String, String, usize, String), Value>,
    pub var_types: HashMap<String, Type>,
}

impl<'s> Session<'s> {
    pub fn new(sources: &'s [Source]) -> Self {
        Session {
            sources,
            cur_file: 0,
            locals: Vec::new(),
            diags: Vec::new(),
            globals: HashMap::new(),
            global_values: HashMap::new(),
            global_in_progress: HashSet::new(),
            funcs: HashMap::new(),
            func_depth: 0,
            blocks: HashMap::new(),
            block_attr_values: HashMap::new(),
            block_in_progress: HashSet::new(),
            env: BTreeMap::new(),
            env_lookup: true,
            cli_vars: BTreeMap::new(),
            instance_attr_values: HashMap::new(),
            var_types: HashMap::new(),
        }
    }

    pub fn pos_of(&self, node: &impl Span) -> Pos {
        let source = &self.sources[self.cur_file];
        match node.span() {
            Some(range) => source.pos(range.start),
            None => Pos {
                file: source.name.clone(),
                line: 0,
                col: 0,
            },
        }
    }

    pub fn error_at(&self, node: &impl Span, msg: impl Into<String>) -> BakeError {
        BakeError::at(self.pos_of(node), msg)
    }

    pub fn push_diag(&mut self, pos: Pos, kind: DiagKind) {
        self.diags.push(Diagnostic { pos, kind });
    }

    pub fn lookup_local(&self, name: &str) -> Option<&Value> {
        self.locals
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v)
    }

    /// Runs `f` in another file with a fresh local scope, restoring ours afterwards.
    pub fn in_scope<T>(
        &mut self,
        file: usize,
        locals: Vec<(String, Value)>,
        f: impl FnOnce(&mut Self) -> T,
    ) -> T {
        let saved_locals = std::mem::replace(&mut self.locals, locals);
        let saved_file = std::mem::replace(&mut self.cur_file, file);
        let out = f(self);
        self.locals = saved_locals;
        self.cur_file = saved_file;
        out
    }

    /// Evaluates and fails if any diagnostic was produced on the way.
    pub fn eval_strict(&mut self, expr: &Expression) -> Result<Value, BakeError> {
        let before = self.diags.len();
        let value = self.eval(expr)?;
        if self.diags.len() > before {
            return Err(BakeError::Eval(self.diags.split_off(before)));
        }
        Ok(value)
    }
}

#[cfg(test)]
mod tests;
