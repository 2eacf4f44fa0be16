//! Collection functions (lists, sets, maps).

use std::collections::BTreeMap;

use super::{FnResult, arg_list, arg_num, arg_str, arity};
use crate::eval::values_equal;
use crate::value::Value;

pub fn call(name: &str, args: &[Value]) -> Option<FnResult> {
    Some(match name {
        "length" => arity(args, 1).and_then(|_| match &args[0] {
            Value::List(items) => Ok(Value::Number(items.len() as f64)),
            Value::Object(map) => Ok(Value::Number(map.len() as f64)),
            Value::String(s) => Ok(Value::Number(s.chars().count() as f64)),
            other => Err(format!("cannot take the length of {}", other.type_name())),
        }),
        "concat" => {
            let mut out = Vec::new();
            for i in 0..args.len() {
                match arg_list(args, i) {
                    Ok(items) => out.extend(items),
                    Err(e) => return Some(Err(e)),
                }
            }
            Ok(Value::List(out))
        }
        "contains" => arity(args, 2)
            .and_then(|_| arg_list(args, 0))
            .map(|items| Value::Bool(items.iter().any(|v| values_equal(v, &args[1])))),
        "sethaselement" => arity(args, 2)
            .and_then(|_| arg_list(args, 0))
            .map(|items| Value::Bool(items.iter().any(|v| values_equal(v, &args[1])))),
        "distinct" => arity(args, 1)
            .and_then(|_| arg_list(args, 0))
            .map(|items| Value::List(dedup(items))),
        "compact" => arity(args, 1).and_then(|_| arg_list(args, 0)).map(|items| {
            Value::List(
                items
                    .into_iter()
                    .filter(|v| {
                        !matches!(v, Value::Null) && v.as_string().is_none_or(|s| !s.is_empty())
                    })
                    .collect(),
            )
        }),
        // go-cty's coalesce skips nulls only; an empty string is a value.
        "coalesce" => args
            .iter()
            .find(|v| !v.is_null())
            .cloned()
            .ok_or_else(|| "no non-null arguments".to_string()),
        "coalescelist" => args
            .iter()
            .find(|v| matches!(v, Value::List(items) if !items.is_empty()))
            .cloned()
            .ok_or_else(|| "no non-empty list arguments".to_string()),
        "chunklist" => arity(args, 2).and_then(|_| {
            let items = arg_list(args, 0)?;
            let size = arg_num(args, 1)?;
            if size < 0.0 {
                return Err("the size argument must be positive".into());
            }
            if size == 0.0 {
                return Ok(Value::List(vec![Value::List(items)]));
            }
            Ok(Value::List(
                items
                    .chunks(size as usize)
                    .map(|c| Value::List(c.to_vec()))
                    .collect(),
            ))
        }),
        "element" => arity(args, 2).and_then(|_| {
            let items = arg_list(args, 0)?;
            if items.is_empty() {
                return Err("cannot use element function with an empty list".into());
            }
            let i = arg_num(args, 1)?;
            if i < 0.0 {
                return Err("cannot use element function with a negative index".into());
            }
            Ok(items[i as usize % items.len()].clone())
        }),
        "index" => arity(args, 2).and_then(|_| match &args[0] {
            Value::List(items) => {
                let i = args[1].as_number().ok_or("index must be a number")?;
                items
                    .get(i as usize)
                    .cloned()
                    .ok_or_else(|| "index out of range".to_string())
            }
            Value::Object(map) => {
                let k = args[1].as_string().ok_or("key must be a string")?;
                map.get(&k)
                    .cloned()
                    .ok_or_else(|| format!("key {k:?} not found"))
            }
            other => Err(format!("cannot index {}", other.type_name())),
        }),
        "indexof" => arity(args, 2).and_then(|_| {
            let items =
                arg_list(args, 0).map_err(|_| "argument must be a list or tuple".to_string())?;
            if items.is_empty() {
                return Err("cannot search an empty list".into());
            }
            items
                .iter()
                .position(|v| values_equal(v, &args[1]))
                .map(|i| Value::Number(i as f64))
                .ok_or_else(|| "item not found".to_string())
        }),
        "hasindex" => arity(args, 2).map(|_| match &args[0] {
            Value::List(items) => Value::Bool(
                args[1]
                    .as_number()
                    .is_some_and(|i| i >= 0.0 && (i as usize) < items.len()),
            ),
            Value::Object(map) => {
                Value::Bool(args[1].as_string().is_some_and(|k| map.contains_key(&k)))
            }
            _ => Value::Bool(false),
        }),
        "flatten" => arity(args, 1).and_then(|_| arg_list(args, 0)).map(|items| {
            let mut out = Vec::new();
            flatten_into(items, &mut out);
            Value::List(out)
        }),
        "keys" => arity(args, 1).and_then(|_| match &args[0] {
            Value::Object(map) => Ok(Value::List(
                map.keys().map(|k| Value::str(k.clone())).collect(),
            )),
            other => Err(format!(
                "keys requires a map or object, got {}",
                other.type_name()
            )),
        }),
        "values" => arity(args, 1).and_then(|_| match &args[0] {
            Value::Object(map) => Ok(Value::List(map.values().cloned().collect())),
            other => Err(format!(
                "values requires a map or object, got {}",
                other.type_name()
            )),
        }),
        "lookup" => {
            if args.len() != 2 && args.len() != 3 {
                Err("lookup requires 2 or 3 arguments".into())
            } else {
                match &args[0] {
                    Value::Object(map) => match args[1]
                        .as_string()
                        .and_then(|k| map.get(&k).cloned())
                    {
                        Some(v) => Ok(v),
                        None if args.len() == 3 => Ok(args[2].clone()),
                        None => Err("the given key was not found and no default was given".into()),
                    },
                    other => Err(format!("lookup requires a map, got {}", other.type_name())),
                }
            }
        }
        "merge" => {
            let mut out = BTreeMap::new();
            for a in args {
                match a {
                    Value::Object(map) => out.extend(map.clone()),
                    Value::Null => {}
                    other => {
                        return Some(Err(format!(
                            "merge requires maps or objects, got {}",
                            other.type_name()
                        )));
                    }
                }
            }
            Ok(Value::Object(out))
        }
        "range" => range(args),
        "reverselist" => arity(args, 1)
            .and_then(|_| arg_list(args, 0))
            .map(|mut items| {
                items.reverse();
                Value::List(items)
            }),
        "slice" => arity(args, 3).and_then(|_| {
            let items = arg_list(args, 0)?;
            let start = arg_num(args, 1)?;
            let end = arg_num(args, 2)?;
            if start < 0.0 || end > items.len() as f64 || start > end {
                return Err("invalid slice indices".into());
            }
            Ok(Value::List(items[start as usize..end as usize].to_vec()))
        }),
        "sort" => arity(args, 1).and_then(|_| {
            let items = arg_list(args, 0)?;
            let mut strings = Vec::with_capacity(items.len());
            for item in items {
                strings.push(item.as_string().ok_or("sort requires a list of strings")?);
            }
            strings.sort();
            Ok(Value::List(
                strings.into_iter().map(Value::String).collect(),
            ))
        }),
        "zipmap" => arity(args, 2).and_then(|_| {
            let keys = arg_list(args, 0)?;
            let values = arg_list(args, 1)?;
            if keys.len() != values.len() {
                return Err("number of keys does not match number of values".into());
            }
            let mut out = BTreeMap::new();
            for (k, v) in keys.into_iter().zip(values) {
                out.insert(k.as_string().ok_or("keys must be strings")?, v);
            }
            Ok(Value::Object(out))
        }),
        "setunion" => sets(args, |acc, s| {
            for v in s {
                if !acc.iter().any(|a| values_equal(a, &v)) {
                    acc.push(v);
                }
            }
        }),
        "setintersection" => sets(args, |acc, s| {
            acc.retain(|a| s.iter().any(|v| values_equal(a, v)))
        }),
        "setsubtract" => sets(args, |acc, s| {
            acc.retain(|a| !s.iter().any(|v| values_equal(a, v)))
        }),
        "setsymmetricdifference" => sets(args, |acc, s| {
            let both: Vec<Value> = acc
                .iter()
                .filter(|a| s.iter().any(|v| values_equal(a, v)))
                .cloned()
                .collect();
            for v in s {
                acc.push(v);
            }
            let mut out = dedup(std::mem::take(acc));
            out.retain(|a| !both.iter().any(|b| values_equal(a, b)));
            *acc = out;
        }),
        "setproduct" => {
            let mut acc: Vec<Vec<Value>> = vec![vec![]];
            for i in 0..args.len() {
                let items = match arg_list(args, i) {
                    Ok(items) => items,
                    Err(e) => return Some(Err(e)),
                };
                let mut next = Vec::new();
                for prefix in &acc {
                    for item in &items {
                        let mut row = prefix.clone();
                        row.push(item.clone());
                        next.push(row);
                    }
                }
                acc = next;
            }
            Ok(Value::List(acc.into_iter().map(Value::List).collect()))
        }
        _ => {
            let _ = arg_str;
            return None;
        }
    })
}

fn dedup(items: Vec<Value>) -> Vec<Value> {
    let mut out: Vec<Value> = Vec::new();
    for v in items {
        if !out.iter().any(|o| values_equal(o, &v)) {
            out.push(v);
        }
    }
    out
}

fn flatten_into(items: Vec<Value>, out: &mut Vec<Value>) {
    for item in items {
        match item {
            Value::List(inner) => flatten_into(inner, out),
            other => out.push(other),
        }
    }
}

fn sets(args: &[Value], f: impl Fn(&mut Vec<Value>, Vec<Value>)) -> FnResult {
    if args.is_empty() {
        return Err("at least one set is required".into());
    }
    let mut acc = dedup(arg_list(args, 0)?);
    for i in 1..args.len() {
        f(&mut acc, arg_list(args, i)?);
    }
    Ok(Value::List(acc))
}

fn range(args: &[Value]) -> FnResult {
    let nums: Vec<f64> = (0..args.len())
        .map(|i| arg_num(args, i))
        .collect::<Result<_, _>>()?;
    let (start, end, step) = match nums.as_slice() {
        [end] => (0.0, *end, 1.0),
        [start, end] => (*start, *end, if end >= start { 1.0 } else { -1.0 }),
        [start, end, step] => (*start, *end, *step),
        _ => return Err("range requires 1 to 3 arguments".into()),
    };
    if step == 0.0 {
        return Err("step must not be zero".into());
    }
    let mut out = Vec::new();
    let mut v = start;
    while (step > 0.0 && v < end) || (step < 0.0 && v > end) {
        out.push(Value::Number(v));
        v += step;
        if out.len() > 1024 * 1024 {
            return Err("more than 1048576 values were generated".into());
        }
    }
    Ok(Value::List(out))
}
