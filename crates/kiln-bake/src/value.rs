//! Runtime values of the bake language, modelled on HCL's dynamic types.

use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Default)]
pub enum Value {
    #[default]
    Null,
    /// Stands in for a value whose evaluation already reported a diagnostic,
    /// so that one mistake does not cascade into many.
    Unknown,
    Bool(bool),
    Number(f64),
    String(String),
    List(Vec<Value>),
    Object(BTreeMap<String, Value>),
}

/// A type constraint as written in `variable { type = ... }`.
#[derive(Debug, Clone, PartialEq)]
pub enum Type {
    Any,
    String,
    Number,
    Bool,
    List(Box<Type>),
    Set(Box<Type>),
    Map(Box<Type>),
    Tuple(Vec<Type>),
    Object(BTreeMap<String, Type>),
}

impl Type {
    pub fn name(&self) -> String {
        match self {
            Type::Any => "any".into(),
            Type::String => "string".into(),
            Type::Number => "number".into(),
            Type::Bool => "bool".into(),
            Type::List(t) => format!("list({})", t.name()),
            Type::Set(t) => format!("set({})", t.name()),
            Type::Map(t) => format!("map({})", t.name()),
            Type::Tuple(ts) => format!(
                "tuple([{}])",
                ts.iter().map(Type::name).collect::<Vec<_>>().join(", ")
            ),
            Type::Object(fields) => format!(
                "object({{{}}})",
                fields
                    .iter()
                    .map(|(k, t)| format!("{k}={}", t.name()))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }

    pub fn is_primitive(&self) -> bool {
        matches!(self, Type::String | Type::Number | Type::Bool)
    }
}

/// Formats a number the way cty prints it: integers without a fraction.
pub fn format_number(n: f64) -> String {
    if n.is_finite() && n.fract() == 0.0 && n.abs() < 1e17 {
        format!("{}", n as i64)
    } else {
        format!("{n}")
    }
}

impl Value {
    /// The (key, value) pairs a `for` iterates: list index and element, or object key and
    /// value. Anything else is handed back for the caller to judge.
    pub fn into_iteration_pairs(self) -> Result<Vec<(Value, Value)>, Value> {
        match self {
            Value::List(items) => Ok(items
                .into_iter()
                .enumerate()
                .map(|(i, v)| (Value::Number(i as f64), v))
                .collect()),
            Value::Object(map) => Ok(map
                .into_iter()
                .map(|(k, v)| (Value::String(k), v))
                .collect()),
            other => Err(other),
        }
    }

    pub fn str(s: impl Into<String>) -> Value {
        Value::String(s.into())
    }

    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Unknown => "unknown",
            Value::Bool(_) => "bool",
            Value::Number(_) => "number",
            Value::String(_) => "string",
            Value::List(_) => "tuple",
            Value::Object(_) => "object",
        }
    }

    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    pub fn is_unknown(&self) -> bool {
        match self {
            Value::Unknown => true,
            Value::List(items) => items.iter().any(Value::is_unknown),
            Value::Object(map) => map.values().any(Value::is_unknown),
            _ => false,
        }
    }

    /// Converts a primitive to its string form (HCL's automatic conversion).
    pub fn as_string(&self) -> Option<String> {
        match self {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(format_number(*n)),
            Value::Bool(b) => Some(b.to_string()),
            _ => None,
        }
    }

    pub fn as_number(&self) -> Option<f64> {
        match self {
            Value::Number(n) => Some(*n),
            Value::String(s) => parse_number(s),
            _ => None,
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Bool(b) => Some(*b),
            Value::String(s) if s == "true" => Some(true),
            Value::String(s) if s == "false" => Some(false),
            _ => None,
        }
    }

    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Value::Null | Value::Unknown => serde_json::Value::Null,
            Value::Bool(b) => serde_json::Value::Bool(*b),
            Value::Number(n) => {
                if n.fract() == 0.0 && n.abs() < 1e17 {
                    serde_json::Value::from(*n as i64)
                } else {
                    serde_json::Number::from_f64(*n)
                        .map(serde_json::Value::Number)
                        .unwrap_or(serde_json::Value::Null)
                }
            }
            Value::String(s) => serde_json::Value::String(s.clone()),
            Value::List(items) => {
                serde_json::Value::Array(items.iter().map(Value::to_json).collect())
            }
            Value::Object(map) => serde_json::Value::Object(
                map.iter().map(|(k, v)| (k.clone(), v.to_json())).collect(),
            ),
        }
    }

    pub fn from_json(json: &serde_json::Value) -> Value {
        match json {
            serde_json::Value::Null => Value::Null,
            serde_json::Value::Bool(b) => Value::Bool(*b),
            serde_json::Value::Number(n) => Value::Number(n.as_f64().unwrap_or(0.0)),
            serde_json::Value::String(s) => Value::String(s.clone()),
            serde_json::Value::Array(items) => {
                Value::List(items.iter().map(Value::from_json).collect())
            }
            serde_json::Value::Object(map) => Value::Object(
                map.iter()
                    .map(|(k, v)| (k.clone(), Value::from_json(v)))
                    .collect(),
            ),
        }
    }
}

pub fn parse_number(s: &str) -> Option<f64> {
    let t = s.trim();
    if t.is_empty() || t.starts_with('+') {
        return None;
    }
    let ok = t
        .chars()
        .all(|c| c.is_ascii_digit() || matches!(c, '-' | '.' | 'e' | 'E' | '+'));
    if !ok {
        return None;
    }
    t.parse::<f64>().ok()
}

/// Converts `value` to the type constraint `ty`, as HCL does for typed variables.
pub fn convert(value: &Value, ty: &Type) -> Result<Value, String> {
    if matches!(value, Value::Unknown) {
        return Ok(Value::Unknown);
    }
    if value.is_null() {
        return Ok(Value::Null);
    }
    let mismatch = || format!("{} required", ty.name());
    match ty {
        Type::Any => Ok(value.clone()),
        Type::String => value.as_string().map(Value::String).ok_or_else(mismatch),
        Type::Number => match value {
            Value::Number(_) => Ok(value.clone()),
            Value::String(s) => parse_number(s)
                .map(Value::Number)
                .ok_or_else(|| format!("a number is required, got {s:?}")),
            _ => Err(mismatch()),
        },
        Type::Bool => match value {
            Value::Bool(_) => Ok(value.clone()),
            Value::String(_) => value
                .as_bool()
                .map(Value::Bool)
                .ok_or_else(|| "a bool is required".to_string()),
            _ => Err(mismatch()),
        },
        Type::List(elem) | Type::Set(elem) => {
            let items = match value {
                Value::List(items) => items.clone(),
                _ => return Err(mismatch()),
            };
            let mut out = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                out.push(convert(item, elem).map_err(|e| format!("element {i}: {e}"))?);
            }
            if matches!(ty, Type::Set(_)) {
                let mut dedup: Vec<Value> = Vec::new();
                for v in out {
                    if !dedup.contains(&v) {
                        dedup.push(v);
                    }
                }
                return Ok(Value::List(dedup));
            }
            Ok(Value::List(out))
        }
        Type::Map(elem) => match value {
            Value::Object(map) => {
                let mut out = BTreeMap::new();
                for (k, v) in map {
                    out.insert(
                        k.clone(),
                        convert(v, elem).map_err(|e| format!("element {k:?}: {e}"))?,
                    );
                }
                Ok(Value::Object(out))
            }
            _ => Err(mismatch()),
        },
        Type::Tuple(types) => match value {
            Value::List(items) if items.len() == types.len() => {
                let mut out = Vec::new();
                for (i, (item, t)) in items.iter().zip(types).enumerate() {
                    out.push(convert(item, t).map_err(|e| format!("element {i}: {e}"))?);
                }
                Ok(Value::List(out))
            }
            Value::List(items) => Err(format!(
                "tuple required with {} elements, got {}",
                types.len(),
                items.len()
            )),
            _ => Err(mismatch()),
        },
        Type::Object(fields) => match value {
            Value::Object(map) => {
                let mut out = BTreeMap::new();
                for (k, t) in fields {
                    match map.get(k) {
                        Some(v) => {
                            out.insert(
                                k.clone(),
                                convert(v, t).map_err(|e| format!("attribute {k:?}: {e}"))?,
                            );
                        }
                        None => return Err(format!("attribute {k:?} is required")),
                    }
                }
                Ok(Value::Object(out))
            }
            _ => Err(mismatch()),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_print_without_fraction_when_integral() {
        assert_eq!(format_number(124.0), "124");
        assert_eq!(format_number(1.5), "1.5");
        assert_eq!(format_number(-3.0), "-3");
    }

    #[test]
    fn convert_string_to_number_and_back() {
        assert_eq!(
            convert(&Value::str("42"), &Type::Number),
            Ok(Value::Number(42.0))
        );
        assert_eq!(
            convert(&Value::Number(7.0), &Type::String),
            Ok(Value::str("7"))
        );
        assert!(convert(&Value::str("1z"), &Type::Number).is_err());
    }

    #[test]
    fn convert_tuple_checks_each_element() {
        let ty = Type::Tuple(vec![Type::Number, Type::String]);
        let ok = Value::List(vec![Value::str("99"), Value::str("x")]);
        assert_eq!(
            convert(&ok, &ty),
            Ok(Value::List(vec![Value::Number(99.0), Value::str("x")]))
        );
        let bad = Value::List(vec![Value::str("x"), Value::str("y")]);
        assert!(convert(&bad, &ty).is_err());
    }
}
