//! Evaluates a set of parsed HCL bodies into a [`Config`]: collects globals,
//! user functions and blocks, expands matrices, then decodes every block.

mod blocks;
mod vars;

use blocks::{Instance, expand_blocks};

pub use vars::{parse_go_bool, parse_typed};

use std::collections::{BTreeMap, HashSet};

use hcl_edit::expr::Expression;
use hcl_edit::structure::{Block, Body, Structure};

use crate::config::{Config, Group, Target};
use crate::error::{BakeError, Pos};
use crate::eval::{GlobalDef, GlobalKind, Session, Source, UserFunc, VariableDef};
use crate::value::Value;

/// Inputs that shape evaluation besides the files themselves.
#[derive(Debug, Clone, Default)]
pub struct EvalOptions {
    pub env: BTreeMap<String, String>,
    pub env_lookup: bool,
    pub cli_vars: BTreeMap<String, String>,
    /// Built-ins such as `BAKE_CMD_CONTEXT`; they shadow same-named variables.
    pub defaults: BTreeMap<String, String>,
    /// Resolve relative `context`/`contexts` paths against each file's directory.
    pub file_relative_paths: bool,
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
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        return Err(format!(
            "only the following characters are allowed: [a-zA-Z0-9_-]+ (invalid target name {name:?})"
        ));
    }
    Ok(())
}

pub fn evaluate(
    sources: &[Source],
    bodies: &[Body],
    opts: &EvalOptions,
) -> Result<Evaluated, BakeError> {
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
                        "target" => raw_blocks.push(RawBlock {
                            kind: "target",
                            label,
                            file,
                            block,
                        }),
                        "group" => raw_blocks.push(RawBlock {
                            kind: "group",
                            label,
                            file,
                            block,
                        }),
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
            Some(GlobalDef {
                kind: GlobalKind::Variable(var),
                ..
            }) => var.default = Some(expr),
            _ => {
                s.globals.insert(
                    name,
                    GlobalDef {
                        file,
                        kind: GlobalKind::Attribute(expr),
                    },
                );
            }
        }
    }
    for (k, v) in &opts.defaults {
        s.globals.insert(
            k.clone(),
            GlobalDef {
                file: 0,
                kind: GlobalKind::Fixed(Value::String(v.clone())),
            },
        );
    }

    let (instances, renamed) = expand_blocks(&mut s, &raw_blocks)?;

    // Every global is resolved up front, as buildx does, so invalid or
    // failing variables surface even when nothing references them.
    let mut names: Vec<String> = s.globals.keys().cloned().collect();
    names.sort();
    for name in &names {
        let pos = global_pos(&s, name);
        s.lookup_global(name, &pos)?;
    }
    if !s.diags.is_empty() {
        return Err(BakeError::Eval(std::mem::take(&mut s.diags)));
    }

    let mut config = Config::default();
    for inst in &instances {
        let dir = opts
            .file_relative_paths
            .then(|| file_dir(&sources[inst.file].name));
        decode_instance(&mut s, inst, &mut config, dir.as_deref())?;
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
        config.add_group(Group {
            name: label,
            description: None,
            targets: dedup,
        });
    }

    let mut variables = Vec::new();
    let mut var_names = var_order;
    var_names.sort();
    for name in var_names {
        let Some(GlobalDef {
            kind: GlobalKind::Variable(def),
            ..
        }) = s.globals.get(&name)
        else {
            continue;
        };
        let value = s.global_values.get(&name).cloned().unwrap_or_default();
        variables.push(VariableInfo {
            type_name: s.var_types.get(&name).map(|t| t.name()),
            value: match value {
                Value::Null => None,
                Value::String(v) => Some(v),
                other => Some(
                    other
                        .as_string()
                        .unwrap_or_else(|| other.to_json().to_string()),
                ),
            },
            description: def.description.clone(),
            name,
        });
    }
    Ok(Evaluated { config, variables })
}

/// Where a global is defined, for errors not tied to a reference.
fn global_pos(s: &Session<'_>, name: &str) -> Pos {
    let Some(def) = s.globals.get(name) else {
        return Pos::default();
    };
    match &def.kind {
        GlobalKind::Variable(v) => v.block_pos.clone(),
        GlobalKind::Attribute(expr) => {
            s.sources[def.file].pos(hcl_edit::Span::span(*expr).map_or(0, |r| r.start))
        }
        GlobalKind::Fixed(_) => Pos {
            file: s
                .sources
                .first()
                .map(|x| x.name.clone())
                .unwrap_or_default(),
            line: 0,
            col: 0,
        },
    }
}

fn single_label(s: &Session<'_>, block: &Block) -> Result<String, BakeError> {
    if block.labels.len() != 1 {
        let labels: Vec<&str> = block.labels.iter().map(|l| l.as_str()).collect();
        return Err(s.error_at(
            block,
            format!("Invalid block; invalid block label: {labels:?}"),
        ));
    }
    Ok(block.labels[0].as_str().to_string())
}

fn collect_variable<'s>(
    s: &mut Session<'s>,
    file: usize,
    label: String,
    block: &'s Block,
) -> Result<(), BakeError> {
    let mut def = match s.globals.get(&label) {
        Some(GlobalDef {
            kind: GlobalKind::Variable(v),
            ..
        }) => v.clone(),
        _ => VariableDef {
            name: label.clone(),
            ..VariableDef::default()
        },
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
                return Err(s.error_at(
                    attr,
                    format!(
                        "Unsupported argument; An argument named {other:?} is not expected here."
                    ),
                ));
            }
        }
    }
    for vb in block.body.get_blocks("validation") {
        let condition = vb.body.get_attribute("condition").ok_or_else(|| {
            s.error_at(
                vb,
                "Missing required argument; The argument \"condition\" is required.",
            )
        })?;
        let message = vb.body.get_attribute("error_message").map(|a| &a.value);
        def.validations.push((file, &condition.value, message));
    }
    s.globals.insert(
        label,
        GlobalDef {
            file,
            kind: GlobalKind::Variable(def),
        },
    );
    Ok(())
}

fn param_name(e: &Expression) -> Option<String> {
    match e {
        Expression::Variable(v) => Some(v.value().to_string()),
        Expression::String(v) => Some(v.value().clone()),
        _ => None,
    }
}

fn collect_function<'s>(
    s: &mut Session<'s>,
    file: usize,
    label: String,
    block: &'s Block,
) -> Result<(), BakeError> {
    let body = &block.body;
    let mut params = Vec::new();
    if let Some(p) = body.get_attribute("params") {
        let Expression::Array(items) = &p.value else {
            return Err(s.error_at(p, "Invalid params; params must be a list of identifiers."));
        };
        for item in items.iter() {
            params.push(param_name(item).ok_or_else(|| {
                s.error_at(
                    item,
                    "Invalid param element; Each parameter name must be an identifier.",
                )
            })?);
        }
    } else {
        return Err(s.error_at(
            block,
            format!("Missing required argument; function {label:?} requires \"params\"."),
        ));
    }
    let variadic = match body.get_attribute("variadic_param") {
        Some(v) => Some(param_name(&v.value).ok_or_else(|| {
            s.error_at(
                v,
                "Invalid param element; Each parameter name must be an identifier.",
            )
        })?),
        None => None,
    };
    let result = body.get_attribute("result").ok_or_else(|| {
        s.error_at(
            block,
            format!("Missing required argument; function {label:?} requires \"result\"."),
        )
    })?;
    s.funcs.insert(
        label,
        UserFunc {
            file,
            params,
            variadic,
            result: &result.value,
        },
    );
    Ok(())
}

/// Directory part of a bake file name ("" for files in the working directory).
pub fn file_dir(name: &str) -> String {
    match name.rfind('/') {
        Some(i) => name[..i].to_string(),
        None => String::new(),
    }
}

/// Rebases a local path onto `dir`; remote and special references stay as they are.
pub fn rebase_path(dir: &str, path: &str) -> String {
    let special =
        path.contains("://") || path.starts_with("target:") || path.starts_with('/') || path == "-";
    if dir.is_empty() || special {
        return path.to_string();
    }
    crate::funcs::clean_path(&format!("{dir}/{path}"))
}

fn decode_instance(
    s: &mut Session<'_>,
    inst: &Instance<'_>,
    config: &mut Config,
    dir: Option<&str>,
) -> Result<(), BakeError> {
    let mut target = Target::named(inst.name.clone());
    let mut group = Group {
        name: inst.name.clone(),
        description: None,
        targets: Vec::new(),
    };
    if let Some(block) = inst.body.blocks().next() {
        s.cur_file = inst.file;
        return Err(s.error_at(
            block,
            "Unsupported block type; Blocks are not allowed here.",
        ));
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
                other => Err(format!(
                    "Unsupported argument; An argument named {other:?} is not expected here."
                )),
            }
        };
        if let Err(msg) = result {
            let pos = s.in_scope(inst.file, Vec::new(), |s| s.pos_of(a));
            return Err(BakeError::at(pos, msg));
        }
    }
    if let Some(dir) = dir {
        if let Some(c) = &mut target.context {
            *c = rebase_path(dir, c);
        }
        for v in target.contexts.iter_mut().flat_map(|m| m.values_mut()) {
            *v = rebase_path(dir, v);
        }
    }
    if inst.kind == "target" {
        config.add_target(target);
    } else {
        config.add_group(group);
    }
    Ok(())
}
