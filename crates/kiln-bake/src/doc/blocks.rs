//! Target and group blocks: matrix expansion, renaming, and the memoized
//! `target.NAME.ATTR` references between blocks.

use std::collections::BTreeMap;

use hcl_edit::structure::Body;

use super::{RawBlock, validate_target_name};
use crate::error::{BakeError, Pos};
use crate::eval::{BlockInstance, Session};
use crate::value::Value;

pub(super) struct Instance<'s> {
    pub kind: &'static str,
    pub name: String,
    pub index: usize,
    pub file: usize,
    pub body: &'s Body,
}

type Renamed = Vec<(String, Vec<String>)>;

pub(super) fn expand_blocks<'s>(
    s: &mut Session<'s>,
    raw: &[RawBlock<'s>],
) -> Result<(Vec<Instance<'s>>, Renamed), BakeError> {
    let mut instances = Vec::new();
    let mut renamed: Renamed = Vec::new();
    s.blocks.entry("target".into()).or_default();
    s.blocks.entry("group".into()).or_default();
    for rb in raw {
        s.cur_file = rb.file;
        let body = &rb.block.body;
        let matrix = body.get_attribute("matrix");
        let name_attr = body.get_attribute("name");
        if let (true, Some(a)) = (rb.kind == "group", matrix.or(name_attr)) {
            return Err(s.error_at(
                a,
                format!(
                    "Invalid attribute; {} is not supported for groups",
                    a.key.value()
                ),
            ));
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
            validate_target_name(&name)
                .map_err(|e| s.error_at(rb.block, format!("Invalid name; {e}")))?;
            if matrix.is_some() && names_here.contains(&name) {
                return Err(s.error_at(
                    rb.block,
                    format!(
                        "Duplicate name; {} {name:?} was already defined by this matrix",
                        rb.kind
                    ),
                ));
            }
            names_here.push(name.clone());
            let list = s
                .blocks
                .get_mut(rb.kind)
                .map(|m| m.entry(name.clone()).or_default())
                .expect("kinds registered");
            list.push(BlockInstance {
                file: rb.file,
                body,
                locals: combo,
            });
            let index = list.len() - 1;
            instances.push(Instance {
                kind: rb.kind,
                name: name.clone(),
                index,
                file: rb.file,
                body,
            });
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
        if hcl_edit::Ident::try_new(key.as_str()).is_err() {
            return Err(format!("matrix key {key:?} must be a valid identifier"));
        }
        let Value::List(items) = values else {
            return Err(format!(
                "matrix values for {key:?} must be a list, got {}",
                values.type_name()
            ));
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
    pub(super) fn instance_attr(
        &mut self,
        kind: &str,
        name: &str,
        index: usize,
        attr: &str,
    ) -> Result<Option<Value>, BakeError> {
        let key = (kind.to_string(), name.to_string(), index, attr.to_string());
        if let Some(v) = self.instance_attr_values.get(&key) {
            return Ok(Some(v.clone()));
        }
        let Some(inst) = self
            .blocks
            .get(kind)
            .and_then(|m| m.get(name))
            .and_then(|l| l.get(index))
            .cloned()
        else {
            return Ok(None);
        };
        let Some(a) = inst.body.get_attribute(attr) else {
            return Ok(None);
        };
        let progress = (kind.to_string(), name.to_string(), attr.to_string());
        if !self.block_in_progress.insert(progress.clone()) {
            let pos = self.in_scope(inst.file, Vec::new(), |s| s.pos_of(a));
            return Err(BakeError::at(
                pos,
                format!("Cycle detected; {kind}.{name}.{attr} refers to itself"),
            ));
        }
        let value = self.in_scope(inst.file, inst.locals.clone(), |s| s.eval(&a.value));
        self.block_in_progress.remove(&progress);
        let value = value?;
        self.instance_attr_values.insert(key, value.clone());
        Ok(Some(value))
    }

    /// `target.NAME.ATTR`: the attribute of the last block of that name that sets it.
    pub fn block_attr(
        &mut self,
        kind: &str,
        name: &str,
        attr: &str,
        pos: &Pos,
    ) -> Result<Value, BakeError> {
        let count = self
            .blocks
            .get(kind)
            .and_then(|m| m.get(name))
            .map(Vec::len);
        let Some(count) = count else {
            return Err(BakeError::at(
                pos.clone(),
                format!("Unknown {kind}; There is no {kind} named {name:?}."),
            ));
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
            return Err(BakeError::at(
                pos.clone(),
                format!("Unknown {kind}; There is no {kind} named {name:?}."),
            ));
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

/// References see attributes as decoded: entry lists (`output`, `cache-from`...)
/// written as CSV strings read back as objects.
fn normalize_reference(kind: &str, attr: &str, v: Value) -> Value {
    let Some(entry_kind) = crate::entries::EntryKind::for_field(attr).filter(|_| kind == "target")
    else {
        return v;
    };
    match v {
        Value::List(items) => Value::List(
            items
                .into_iter()
                .flat_map(|item| match &item {
                    Value::String(s) => match crate::entries::parse_entries(entry_kind, s) {
                        Ok(entries) => entries
                            .iter()
                            .map(|e| crate::entries::entry_value(entry_kind, e))
                            .collect(),
                        Err(_) => vec![item],
                    },
                    _ => vec![item],
                })
                .collect(),
        ),
        other => other,
    }
}
