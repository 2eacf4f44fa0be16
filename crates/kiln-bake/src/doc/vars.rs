//! Global names: variables (typed, env-overridable, validated) and
//! top-level attributes.

use std::collections::BTreeMap;

use hcl_edit::expr::{Expression, ObjectKey};

use crate::error::{BakeError, Pos};
use crate::eval::{GlobalKind, Session, VariableDef};
use crate::funcs::csv_fields;
use crate::value::{Type, Value, convert, parse_number};

impl<'s> Session<'s> {
    /// Resolves a global name; `Ok(None)` means no such name exists.
    pub fn lookup_global(&mut self, name: &str, pos: &Pos) -> Result<Option<Value>, BakeError> {
        if let Some(v) = self.global_values.get(name) {
            return Ok(Some(v.clone()));
        }
        let Some(def) = self.globals.get(name).cloned() else {
            return Ok(None);
        };
        if !self.global_in_progress.insert(name.to_string()) {
            return Err(BakeError::at(
                pos.clone(),
                format!("variable cycle not allowed for {name}"),
            ));
        }
        let result = match def.kind {
            GlobalKind::Fixed(v) => Ok(v),
            GlobalKind::Attribute(expr) => {
                self.in_scope(def.file, Vec::new(), |s| s.eval_strict(expr))
            }
            GlobalKind::Variable(var) => {
                self.in_scope(def.file, Vec::new(), |s| s.resolve_variable(&var))
            }
        };
        self.global_in_progress.remove(name);
        let value = result?;
        self.global_values.insert(name.to_string(), value.clone());
        if let Some(GlobalKind::Variable(var)) = self.globals.get(name).map(|d| d.kind.clone()) {
            let file = self.globals[name].file;
            self.in_scope(file, Vec::new(), |s| s.validate_variable(&var))?;
        }
        Ok(Some(value))
    }

    fn resolve_variable(&mut self, var: &VariableDef<'s>) -> Result<Value, BakeError> {
        let name = var.name.as_str();
        let ty = match var.type_expr {
            Some(e) => Some(self.parse_type(e)?),
            None => None,
        };
        if let Some(ty) = &ty {
            self.var_types.insert(name.to_string(), ty.clone());
        }
        let fail = |msg: String| BakeError::at(var.block_pos.clone(), msg);
        let override_value = self.cli_vars.get(name).cloned().or_else(|| {
            if self.env_lookup {
                self.env.get(name).cloned()
            } else {
                None
            }
        });
        let json_override = if self.env_lookup && ty.is_some() {
            self.env.get(&format!("{name}_JSON")).cloned()
        } else {
            None
        };
        let default = match var.default {
            Some(expr) => Some(self.eval_strict(expr)?),
            None => None,
        };
        if let Some(raw) = override_value {
            return match (&ty, &default) {
                (Some(ty), _) => parse_typed(name, &raw, ty).map_err(fail),
                (None, Some(Value::Bool(_))) => parse_go_bool(&raw)
                    .map(Value::Bool)
                    .ok_or_else(|| fail(format!("failed to parse {name} as bool: invalid syntax"))),
                (None, Some(Value::Number(_))) => parse_number(&raw)
                    .filter(|n| n.is_finite())
                    .map(Value::Number)
                    .ok_or_else(|| {
                        fail(format!("failed to parse {name} as number: invalid syntax"))
                    }),
                (None, Some(Value::String(_)) | Some(Value::Null) | None) => Ok(Value::String(raw)),
                (None, Some(other)) => Err(fail(format!(
                    "unsupported type {} for variable {name}",
                    other.type_name()
                ))),
            };
        }
        if let (Some(raw), Some(ty)) = (json_override, &ty) {
            let json: serde_json::Value = serde_json::from_str(&raw)
                .map_err(|e| fail(format!("failed to parse {name}_JSON from JSON: {e}")))?;
            return convert(&Value::from_json(&json), ty).map_err(|e| {
                fail(format!(
                    "failed to convert {name}_JSON from JSON: Unsuitable value type: {e}"
                ))
            });
        }
        match (default, &ty) {
            (Some(v), Some(ty)) => convert(&v, ty)
                .map_err(|e| fail(format!("Unsuitable value type for variable {name}: {e}"))),
            (Some(v), None) => Ok(v),
            (None, Some(_)) => Ok(Value::Null),
            (None, None) => Ok(Value::String(String::new())),
        }
    }

    fn validate_variable(&mut self, var: &VariableDef<'s>) -> Result<(), BakeError> {
        for (file, condition, message) in &var.validations {
            let (file, condition, message) = (*file, *condition, *message);
            let ok = self.in_scope(file, Vec::new(), |s| s.eval_strict(condition))?;
            match ok.as_bool() {
                Some(true) => {}
                Some(false) => {
                    let msg = match message {
                        Some(m) => self
                            .in_scope(file, Vec::new(), |s| s.eval_strict(m))?
                            .as_string()
                            .unwrap_or_default(),
                        None => format!("validation failed for variable {}", var.name),
                    };
                    let pos = self.in_scope(file, Vec::new(), |s| s.pos_of(condition));
                    return Err(BakeError::at(
                        pos,
                        format!("Invalid value for variable; {msg}"),
                    ));
                }
                None => {
                    let pos = self.in_scope(file, Vec::new(), |s| s.pos_of(condition));
                    return Err(BakeError::at(
                        pos,
                        "Invalid validation condition; the condition must be a bool.",
                    ));
                }
            }
        }
        Ok(())
    }

    /// Reads a type constraint expression (`list(string)`, `object({a=number})`...).
    pub fn parse_type(&self, e: &Expression) -> Result<Type, BakeError> {
        let bad = |what: &str| self.error_at(e, format!("Invalid type specification; {what}"));
        match e {
            Expression::Variable(v) => match v.value().as_str() {
                "string" => Ok(Type::String),
                "number" => Ok(Type::Number),
                "bool" => Ok(Type::Bool),
                "any" => Ok(Type::Any),
                other => Err(bad(&format!(
                    "the keyword {other:?} is not a valid type specification"
                ))),
            },
            Expression::FuncCall(call) => {
                let name = call.name.name.value().as_str();
                let arg = call
                    .args
                    .iter()
                    .next()
                    .ok_or_else(|| bad("missing type argument"))?;
                match name {
                    "list" => Ok(Type::List(Box::new(self.parse_type(arg)?))),
                    "set" => Ok(Type::Set(Box::new(self.parse_type(arg)?))),
                    "map" => Ok(Type::Map(Box::new(self.parse_type(arg)?))),
                    "tuple" => match arg {
                        Expression::Array(items) => Ok(Type::Tuple(
                            items
                                .iter()
                                .map(|i| self.parse_type(i))
                                .collect::<Result<_, _>>()?,
                        )),
                        _ => Err(bad("tuple requires a list of types")),
                    },
                    "object" => match arg {
                        Expression::Object(obj) => {
                            let mut fields = BTreeMap::new();
                            for (k, v) in obj.iter() {
                                let key = match k {
                                    ObjectKey::Ident(i) => i.value().to_string(),
                                    ObjectKey::Expression(Expression::Variable(i)) => {
                                        i.value().to_string()
                                    }
                                    ObjectKey::Expression(Expression::String(s)) => {
                                        s.value().clone()
                                    }
                                    _ => {
                                        return Err(bad(
                                            "object attribute names must be identifiers",
                                        ));
                                    }
                                };
                                fields.insert(key, self.parse_type(v.expr())?);
                            }
                            Ok(Type::Object(fields))
                        }
                        _ => Err(bad("object requires an object of types")),
                    },
                    other => Err(bad(&format!("unknown type constructor {other:?}"))),
                }
            }
            Expression::Parenthesis(p) => self.parse_type(p.inner()),
            _ => Err(bad("a type keyword or constructor is required")),
        }
    }
}

/// Go's `strconv.ParseBool`.
pub fn parse_go_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

fn parse_primitive(name: &str, raw: &str, ty: &Type) -> Result<Value, String> {
    match ty {
        Type::String => Ok(Value::String(raw.to_string())),
        Type::Number => parse_number(raw)
            .filter(|n| n.is_finite())
            .map(Value::Number)
            .ok_or_else(|| format!("failed to parse {name} as number: invalid syntax")),
        Type::Bool => parse_go_bool(raw)
            .map(Value::Bool)
            .ok_or_else(|| format!("failed to parse {name} as bool: invalid syntax")),
        other => Err(format!(
            "unsupported type {} for variable {name}",
            other.name()
        )),
    }
}

/// Parses an environment value for a typed variable: primitives directly,
/// lists/sets/tuples as CSV, maps as CSV of `key:value` pairs.
pub fn parse_typed(name: &str, raw: &str, ty: &Type) -> Result<Value, String> {
    match ty {
        Type::String | Type::Number | Type::Bool => parse_primitive(name, raw, ty),
        Type::List(elem) | Type::Set(elem) => {
            if !elem.is_primitive() {
                return Err(format!(
                    "unsupported type {} for variable {name}",
                    ty.name()
                ));
            }
            let fields = csv_fields(raw).map_err(|e| format!("failed to parse {name}: {e}"))?;
            let items = fields
                .iter()
                .map(|f| parse_primitive(name, f, elem))
                .collect::<Result<Vec<_>, _>>()?;
            convert(&Value::List(items), ty)
                .map_err(|e| format!("Unsuitable value type for {name}: {e}"))
        }
        Type::Tuple(types) => {
            let fields = csv_fields(raw).map_err(|e| format!("failed to parse {name}: {e}"))?;
            if fields.len() != types.len() {
                return Err(format!(
                    "Unsuitable value type for {name}: expected {} elements",
                    types.len()
                ));
            }
            let mut items = Vec::new();
            for (f, t) in fields.iter().zip(types) {
                items.push(
                    parse_primitive(name, f, t)
                        .map_err(|e| format!("Unsuitable value type for {name}: {e}"))?,
                );
            }
            Ok(Value::List(items))
        }
        Type::Map(elem) => {
            let fields = csv_fields(raw).map_err(|e| format!("failed to parse {name}: {e}"))?;
            let mut out = BTreeMap::new();
            for f in fields {
                let parts: Vec<&str> = f.split(':').collect();
                if parts.len() != 2 {
                    return Err(format!(
                        "failed to parse {name}: expected one k/v pair in {f:?}"
                    ));
                }
                out.insert(parts[0].to_string(), parse_primitive(name, parts[1], elem)?);
            }
            Ok(Value::Object(out))
        }
        other => Err(format!(
            "unsupported type {} for variable {name}",
            other.name()
        )),
    }
}
