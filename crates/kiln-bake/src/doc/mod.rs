//! Evaluates a set of parsed HCL bodies into a [`Config`]: collects globals,
//! user functions and blocks, expands matrices, then decodes every block.

mod vars;

pub use vars::{parse_go_bool, parse_typed};

use std::collections::{BTreeMap, HashSet};

use hcl_edit::expr::Expression;
use hcl_edit::structure::{Block, Body, Structure};

use crate::config::{Config, Group, Target};
use crate::error::{BakeError, Pos};
use crate::eval::{BlockInstance, GlobalDef, GlobalKind, Session, Source, UserFunc, VariableDef};
use crate::value::Value;

/// Inputs that shape evaluation besides the files themselves.
#[derive(Debug, Clone, Default)]
pub struct EvalOptions {
    pub env: BTreeMap<String, String>,
    pub env_lookup: bool,
    pub cli_vars: BTreeMap<String, String>,
    /// Built-ins such as `BAKE_CMD_CONTEXT`; they shadow same-named variables.
    pub defaults: BTreeMap<String, String>,
}

/// A variable as `--list=variables` shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct VariableInfo {
    pub name: String,
    pub type_name: Option<String>,
    /// `None` when the value is null.
    pub value: Option<String>,
    pub description: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct Evaluated {
    pub config: Config,
    pub variables: Vec<VariableInfo>,
}

struct RawBlock<'s> {
    kind: &'static str,
    label: String,
    file: usize,
    block: &'s Block,
}

/// Target names are restricted so that they survive CLI and `--set` use.
pub fn validate_target_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("target name cannot be empty".into());
    }
    if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
        return Err(format!(
            "only the following characters are allowed: [a-zA-Z0-9_-]+ (invalid target name {name:?})"
        ));
    }
    Ok(())
}

pub fn evaluate(sources: &[Source], bodies: &[Body], opts: &EvalOptions) -> Result<Evaluated, BakeError> {
    let mut s = Session::new(sources);
    s.env = opts.env.clone();
    s.env_lookup = opts.env_lookup;
    s.cli_vars = opts.cli_vars.clone();
    let reserved: HashSet<&str> = opts.defaults.keys().map(String::as_str).collect();
    let mut raw_blocks = Vec::new();
    let mut var_order: Vec<String> = Vec::new();
    let mut attributes: Vec<(usize, String, &Expression)> = Vec::new();

    for (file, body) in bodies.iter().enumerate() {
        s.cur_file = file;
        for structure in body.iter() {
            match structure {
                Structure::Attribute(attr) => {
                    let name = attr.key.value().to_string();
                    if reserved.contains(name.as_str()) {
                        continue;
                    }
                    attributes.push((file, name, &attr.value));
                }
                Structure::Block(block) => {
                    let kind = block.ident.value().as_str();
                    let label = single_label(&s, block)?;
                    match kind {
                        "variable" => {
                            if reserved.contains(label.as_str()) {
                                continue;
                            }
                            if !var_order.contains(&label) {
                                var_order.push(label.clone());
                            }
                            collect_variable(&mut s, file, label, block)?;
                        }
                        "function" => collect_function(&mut s, file, label, block)?,
                        "target" => raw_blocks.push(RawBlock { kind: "target", label, file, block }),
                        "group" => raw_blocks.push(RawBlock { kind: "group", label, file, block }),
                        other => {
                            return Err(s.error_at(
                                block,
                                format!("Unsupported block type; Blocks of type {other:?} are not expected here."),
                            ));
                        }
                    }
                }
            }
        }
    }
    // A top-level attribute named like a variable replaces its default,
    // while the environment can still override it.
    for (file, name, expr) in attributes {
        match s.globals.get_mut(&name) {
            Some(GlobalDef { kind: GlobalKind::Variable(var), .. }) => var.default = Some(expr),
            _ => {
                s.globals.insert(name, GlobalDef { file, kind: GlobalKind::Attribute(expr) });
            }
        }
    }
    for (k, v) in &opts.defaults {
        s.globals.insert(k.clone(), GlobalDef { file: 0, kind: GlobalKind::Fixed(Value::String(v.clone())) });
    }

    let (instances, renamed) = expand_blocks(&mut s, &raw_blocks)?;

    // Every global is resolved up front, as buildx does, so invalid or
    // failing variables surface even when nothing references them.
    let mut names: Vec<String> = s.globals.keys().cloned().collect();
    names.sort();
    for name in &names {
        let pos = Pos { file: sources.first().map(|x| x.name.clone()).unwrap_or_default(), line: 0, col: 0 };
        s.lookup_global(name, &pos)?;
    }
    if !s.diags.is_empty() {
        return Err(BakeError::Eval(std::mem::take(&mut s.diags)));
    }

    let mut config = Config::default();
    for inst in &instances {
        decode_instance(&mut s, inst, &mut config)?;
    }
    if !s.diags.is_empty() {
        return Err(BakeError::Eval(std::mem::take(&mut s.diags)));
    }
    for (label, names) in renamed {
        let mut dedup: Vec<String> = Vec::new();
        for n in names {
            if !dedup.contains(&n) {
                dedup.push(n);
            }
        }
        if dedup.len() == 1 && dedup[0] == label {
            continue;
        }
        config.add_group(Group { name: label, description: None, targets: dedup });
    }

    let mut variables = Vec::new();
    let mut var_names = var_order;
    var_names.sort();
    for name in var_names {
        let Some(GlobalDef { kind: GlobalKind::Variable(def), .. }) = s.globals.get(&name) else {
            continue;
        };
        let value = s.global_values.get(&name).cloned().unwrap_or_default();
        variables.push(VariableInfo {
            type_name: s.var_types.get(&name).map(|t| t.name()),
            value: match value {
                Value::Null => None,
                Value::String(v) => Some(v),
                other => Some(other.as_string().unwrap_or_else(|| other.to_json().to_string())),
            },
            description: def.description.clone(),
            name,
        });
    }
    Ok(Evaluated { config, variables })
}

fn single_label(s: &Session<'_>, block: &Block) -> Result<String, BakeError> {
    if block.labels.len() != 1 {
        let labels: Vec<&str> = block.labels.iter().map(|l| l.as_str()).collect();
        return Err(s.error_at(block, format!("Invalid block; invalid block label: {labels:?}")));
    }
    Ok(block.labels[0].as_str().to_string())
}

fn collect_variable<'s>(s: &mut Session<'s>, file: usize, label: String, block: &'s Block) -> Result<(), BakeError> {
    let mut def = match s.globals.get(&label) {
        Some(GlobalDef { kind: GlobalKind::Variable(v), .. }) => v.clone(),
        _ => VariableDef { name: label.clone(), ..VariableDef::default() },
    };
    def.block_pos = s.pos_of(block);
    for attr in block.body.attributes() {
        match attr.key.value().as_str() {
            "default" => def.default = Some(&attr.value),
            "type" => def.type_expr = Some(&attr.value),
            "description" => {
                def.description = match &attr.value {
                    Expression::String(d) => Some(d.value().clone()),
                    other => s.eval_strict(other)?.as_string(),
                }
            }
            "sensitive" | "nullable" => {}
            other => {
                return Err(s.error_at(attr, format!("Unsupported argument; An argument named {other:?} is not expected here.")));
            }
        }
    }
    for vb in block.body.get_blocks("validation") {
        let condition = vb
            .body
            .get_attribute("condition")
            .ok_or_else(|| s.error_at(vb, "Missing required argument; The argument \"condition\" is required."))?;
        let message = vb.body.get_attribute("error_message").map(|a| &a.value);
        def.validations.push((file, &condition.value, message));
    }
    s.globals.insert(label, GlobalDef { file, kind: GlobalKind::Variable(def) });
    Ok(())
}

fn param_name(e: &Expression) -> Option<String> {
    match e {
        Expression::Variable(v) => Some(v.value().to_string()),
        Expression::String(v) => Some(v.value().clone()),
        _ => None,
    }
}

fn collect_function<'s>(s: &mut Session<'s>, file: usize, label: String, block: &'s Block) -> Result<(), BakeError> {
    let body = &block.body;
    let mut params = Vec::new();
    if let Some(p) = body.get_attribute("params") {
        let Expression::Array(items) = &p.value else {
            return Err(s.error_at(p, "Invalid params; params must be a list of identifiers."));
        };
        for item in items.iter() {
            params.push(param_name(item).ok_or_else(|| {
                s.error_at(item, "Invalid param element; Each parameter name must be an identifier.")
            })?);
        }
    } else {
        return Err(s.error_at(block, format!("Missing required argument; function {label:?} requires \"params\".")));
    }
    let variadic = match body.get_attribute("variadic_param") {
        Some(v) => Some(param_name(&v.value).ok_or_else(|| {
            s.error_at(v, "Invalid param element; Each parameter name must be an identifier.")
        })?),
        None => None,
    };
    let result = body
        .get_attribute("result")
        .ok_or_else(|| s.error_at(block, format!("Missing required argument; function {label:?} requires \"result\".")))?;
    s.funcs.insert(label, UserFunc { file, params, variadic, result: &result.value });
    Ok(())
}

struct Instance<'s> {
    kind: &'static str,
    name: String,
    index: usize,
    file: usize,
    body: &'s Body,
    pos: Pos,
}

type Renamed = Vec<(String, Vec<String>)>;

fn expand_blocks<'s>(s: &mut Session<'s>, raw: &[RawBlock<'s>]) -> Result<(Vec<Instance<'s>>, Renamed), BakeError> {
    let mut instances = Vec::new();
    let mut renamed: Renamed = Vec::new();
    s.blocks.entry("target".into()).or_default();
    s.blocks.entry("group".into()).or_default();
    for rb in raw {
        s.cur_file = rb.file;
        let body = &rb.block.body;
        let matrix = body.get_attribute("matrix");
        let name_attr = body.get_attribute("name");
        if rb.kind == "group" {
            if let Some(a) = matrix.or(name_attr) {
                return Err(s.error_at(a, format!("Invalid attribute; {} is not supported for groups", a.key.value())));
            }
        }
        if let (Some(a), None) = (name_attr, matrix) {
            return Err(s.error_at(a, "Invalid attribute; name requires matrix"));
        }
        let combos = match matrix {
            Some(m) => {
                let value = s.in_scope(rb.file, Vec::new(), |s| s.eval_strict(&m.value))?;
                matrix_combos(&value).map_err(|e| s.error_at(m, format!("Invalid matrix; {e}")))?
            }
            None => vec![Vec::new()],
        };
        let mut names_here: Vec<String> = Vec::new();
        for combo in combos {
            let name = match name_attr {
                Some(a) => {
                    let v = s.in_scope(rb.file, combo.clone(), |s| s.eval_strict(&a.value))?;
                    v.as_string()
                        .ok_or_else(|| s.error_at(a, "Invalid name; name must be a string"))?
                }
                None => rb.label.clone(),
            };
            if rb.kind == "target" {
                validate_target_name(&name).map_err(|e| s.error_at(rb.block, format!("Invalid name; {e}")))?;
            }
            if matrix.is_some() && names_here.contains(&name) {
                return Err(s.error_at(rb.block, format!("Duplicate name; {} {name:?} was already defined by this matrix", rb.kind)));
            }
            names_here.push(name.clone());
            let list = s.blocks.get_mut(rb.kind).and_then(|m| Some(m.entry(name.clone()).or_default())).expect("kinds registered");
            list.push(BlockInstance { file: rb.file, body, locals: combo });
            let index = list.len() - 1;
            let pos = s.pos_of(rb.block);
            instances.push(Instance { kind: rb.kind, name: name.clone(), index, file: rb.file, body, pos });
        }
        if matrix.is_some() {
            match renamed.iter_mut().find(|(l, _)| *l == rb.label) {
                Some((_, names)) => names.extend(names_here),
                None => renamed.push((rb.label.clone(), names_here)),
            }
        }
    }
    Ok((instances, renamed))
}

/// The cartesian product of a matrix object; keys iterate in sorted order
/// with the last key varying fastest.
fn matrix_combos(value: &Value) -> Result<Vec<Vec<(String, Value)>>, String> {
    let Value::Object(map) = value else {
        return Err(format!("matrix must be a map, got {}", value.type_name()));
    };
    let mut combos: Vec<Vec<(String, Value)>> = vec![Vec::new()];
    for (key, values) in map {
        if !hcl_edit::Ident::try_new(key.as_str()).is_ok() {
            return Err(format!("matrix key {key:?} must be a valid identifier"));
        }
        let Value::List(items) = values else {
            return Err(format!("matrix values for {key:?} must be a list, got {}", values.type_name()));
        };
        let mut next = Vec::with_capacity(combos.len() * items.len());
        for prefix in &combos {
            for item in items {
                let mut row = prefix.clone();
                row.push((key.clone(), item.clone()));
                next.push(row);
            }
        }
        combos = next;
    }
    Ok(combos)
}

impl<'s> Session<'s> {
    /// Value of one attribute of one block instance (memoized).
    fn instance_attr(&mut self, kind: &str, name: &str, index: usize, attr: &str) -> Result<Option<Value>, BakeError> {
        let key = (kind.to_string(), name.to_string(), index, attr.to_string());
        if let Some(v) = self.instance_attr_values.get(&key) {
            return Ok(Some(v.clone()));
        }
        let Some(inst) = self.blocks.get(kind).and_then(|m| m.get(name)).and_then(|l| l.get(index)).cloned() else {
            return Ok(None);
        };
        let Some(a) = inst.body.get_attribute(attr) else {
            return Ok(None);
        };
        let progress = (kind.to_string(), name.to_string(), attr.to_string());
        if !self.block_in_progress.insert(progress.clone()) {
            let pos = self.in_scope(inst.file, Vec::new(), |s| s.pos_of(a));
            return Err(BakeError::at(pos, format!("Cycle detected; {kind}.{name}.{attr} refers to itself")));
        }
        let value = self.in_scope(inst.file, inst.locals.clone(), |s| s.eval(&a.value));
        self.block_in_progress.remove(&progress);
        let value = value?;
        self.instance_attr_values.insert(key, value.clone());
        Ok(Some(value))
    }

    /// `target.NAME.ATTR`: the attribute of the last block of that name that sets it.
    pub fn block_attr(&mut self, kind: &str, name: &str, attr: &str, pos: &Pos) -> Result<Value, BakeError> {
        let count = self.blocks.get(kind).and_then(|m| m.get(name)).map(Vec::len);
        let Some(count) = count else {
            return Err(BakeError::at(pos.clone(), format!("Unknown {kind}; There is no {kind} named {name:?}.")));
        };
        for index in (0..count).rev() {
            if let Some(v) = self.instance_attr(kind, name, index, attr)? {
                return Ok(normalize_reference(kind, attr, v));
            }
        }
        if attr == "name" {
            return Ok(Value::String(name.to_string()));
        }
        Ok(Value::Null)
    }

    /// `target.NAME` as a whole object of its attributes.
    pub fn block_object(&mut self, kind: &str, name: &str, pos: &Pos) -> Result<Value, BakeError> {
        let Some(list) = self.blocks.get(kind).and_then(|m| m.get(name)).cloned() else {
            return Err(BakeError::at(pos.clone(), format!("Unknown {kind}; There is no {kind} named {name:?}.")));
        };
        let mut out = BTreeMap::new();
        for inst in &list {
            for a in inst.body.attributes() {
                let attr = a.key.value().to_string();
                if attr == "matrix" || attr == "name" || out.contains_key(&attr) {
                    continue;
                }
                let v = self.block_attr(kind, name, &attr, pos)?;
                out.insert(attr, v);
            }
        }
        Ok(Value::Object(out))
    }
}

fn decode_instance(s: &mut Session<'_>, inst: &Instance<'_>, config: &mut Config) -> Result<(), BakeError> {
    let mut target = Target::named(inst.name.clone());
    let mut group = Group { name: inst.name.clone(), description: None, targets: Vec::new() };
    for block in inst.body.blocks() {
        s.cur_file = inst.file;
        return Err(s.error_at(block, "Unsupported block type; Blocks are not allowed here."));
    }
    for a in inst.body.attributes() {
        let field = a.key.value().as_str();
        if field == "matrix" || field == "name" {
            continue;
        }
        let Some(value) = s.instance_attr(inst.kind, &inst.name, inst.index, field)? else {
            continue;
        };
        if value.is_unknown() {
            continue;
        }
        let result = if inst.kind == "target" {
            target.set_attr(field, &value)
        } else {
            match field {
                "targets" => crate::config::strings_of(&value).map(|t| group.targets = t),
                "description" => {
                    group.description = value.as_string();
                    Ok(())
                }
                other => Err(format!("Unsupported argument; An argument named {other:?} is not expected here.")),
            }
        };
        if let Err(msg) = result {
            let pos = s.in_scope(inst.file, Vec::new(), |s| s.pos_of(a));
            return Err(BakeError::at(pos, msg));
        }
    }
    let _ = &inst.pos;
    if inst.kind == "target" {
        config.add_target(target);
    } else {
        config.add_group(group);
    }
    Ok(())
}

/// References see attributes as decoded: entry lists (`output`, `cache-from`...)
/// written as CSV strings read back as objects.
fn normalize_reference(kind: &str, attr: &str, v: Value) -> Value {
    let Some(entry_kind) = crate::entries::EntryKind::for_field(attr).filter(|_| kind == "target") else {
        return v;
    };
    match v {
        Value::List(items) => Value::List(
            items
                .into_iter()
                .flat_map(|item| match &item {
                    Value::String(s) => match crate::entries::parse_entries(entry_kind, s) {
                        Ok(entries) => entries.iter().map(|e| crate::entries::entry_value(entry_kind, e)).collect(),
                        Err(_) => vec![item],
                    },
                    _ => vec![item],
                })
                .collect(),
        ),
        other => other,
    }
}
