//! Arithmetic, comparison and logic functions.

use super::{FnResult, arg_num, arg_str, arity};
use crate::eval::values_equal;
use crate::value::Value;

pub fn call(name: &str, args: &[Value]) -> Option<FnResult> {
    Some(match name {
        "add" => bin(args, |a, b| Ok(a + b)),
        "subtract" => bin(args, |a, b| Ok(a - b)),
        "multiply" => bin(args, |a, b| Ok(a * b)),
        "divide" => bin(args, |a, b| {
            if b == 0.0 {
                Err("can't divide by zero".into())
            } else {
                Ok(a / b)
            }
        }),
        "modulo" => bin(args, |a, b| {
            if b == 0.0 {
                Err("can't use modulo by zero".into())
            } else {
                Ok(a % b)
            }
        }),
        "pow" => bin(args, |a, b| Ok(a.powf(b))),
        "log" => bin(args, |a, b| Ok(a.ln() / b.ln())),
        "absolute" => un(args, f64::abs),
        "negate" => un(args, |a| -a),
        "ceil" => un(args, f64::ceil),
        "floor" => un(args, f64::floor),
        "int" => un(args, f64::trunc),
        "signum" => un(args, |a| {
            if a > 0.0 {
                1.0
            } else if a < 0.0 {
                -1.0
            } else {
                0.0
            }
        }),
        "max" | "min" => {
            if args.is_empty() {
                Err("must pass at least one number".into())
            } else {
                let nums: Result<Vec<f64>, String> =
                    (0..args.len()).map(|i| arg_num(args, i)).collect();
                nums.map(|n| {
                    Value::Number(if name == "max" {
                        n.into_iter().fold(f64::MIN, f64::max)
                    } else {
                        n.into_iter().fold(f64::MAX, f64::min)
                    })
                })
            }
        }
        "parseint" => arity(args, 2).and_then(|_| {
            let s = arg_str(args, 0)?;
            let base = arg_num(args, 1)? as u32;
            if !(2..=36).contains(&base) {
                return Err("base must be a whole number between 2 and 36 inclusive".into());
            }
            i64::from_str_radix(&s, base)
                .map(|n| Value::Number(n as f64))
                .map_err(|_| format!("cannot parse {s:?} as a base {base} integer"))
        }),
        "equal" => arity(args, 2).map(|_| Value::Bool(values_equal(&args[0], &args[1]))),
        "notequal" => arity(args, 2).map(|_| Value::Bool(!values_equal(&args[0], &args[1]))),
        "greaterthan" => cmp(args, |a, b| a > b),
        "greaterthanorequalto" => cmp(args, |a, b| a >= b),
        "lessthan" => cmp(args, |a, b| a < b),
        "lessthanorequalto" => cmp(args, |a, b| a <= b),
        "and" | "or" => arity(args, 2).and_then(|_| {
            let a = args[0].as_bool().ok_or("bool required")?;
            let b = args[1].as_bool().ok_or("bool required")?;
            Ok(Value::Bool(if name == "and" { a && b } else { a || b }))
        }),
        "not" => arity(args, 1).and_then(|_| {
            args[0]
                .as_bool()
                .map(|b| Value::Bool(!b))
                .ok_or_else(|| "bool required".to_string())
        }),
        _ => return None,
    })
}

fn bin(args: &[Value], f: impl Fn(f64, f64) -> Result<f64, String>) -> FnResult {
    arity(args, 2)?;
    f(arg_num(args, 0)?, arg_num(args, 1)?).map(Value::Number)
}

fn un(args: &[Value], f: impl Fn(f64) -> f64) -> FnResult {
    arity(args, 1)?;
    Ok(Value::Number(f(arg_num(args, 0)?)))
}

fn cmp(args: &[Value], f: impl Fn(f64, f64) -> bool) -> FnResult {
    arity(args, 2)?;
    Ok(Value::Bool(f(arg_num(args, 0)?, arg_num(args, 1)?)))
}
