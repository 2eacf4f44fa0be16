//! The bake standard library: go-cty's stdlib plus buildx's additions,
//! re-implemented from their documented behaviour.

mod collections;
mod encoding;
mod net;
mod numeric;
mod strings;
mod time;

use crate::value::Value;

pub type FnResult = Result<Value, String>;

/// Every built-in function name, sorted.
pub const NAMES: &[&str] = &[
    "absolute", "add", "and", "base64decode", "base64encode", "basename", "bcrypt", "byteslen",
    "bytesslice", "can", "ceil", "chomp", "chunklist", "cidrhost", "cidrnetmask", "cidrsubnet",
    "cidrsubnets", "coalesce", "coalescelist", "compact", "concat", "contains", "convert",
    "csvdecode", "dirname", "distinct", "divide", "element", "equal", "flatten", "floor",
    "format", "formatdate", "formatlist", "formattimestamp", "greaterthan",
    "greaterthanorequalto", "hasindex", "homedir", "indent", "index", "indexof", "int", "join",
    "jsondecode", "jsonencode", "keys", "length", "lessthan", "lessthanorequalto", "log",
    "lookup", "lower", "max", "md5", "merge", "min", "modulo", "multiply", "negate", "not",
    "notequal", "or", "parseint", "pow", "range", "regex", "regex_replace", "regexall",
    "replace", "reverse", "reverselist", "rsadecrypt", "sanitize", "semvercmp", "sethaselement",
    "setintersection", "setproduct", "setsubtract", "setsymmetricdifference", "setunion", "sha1",
    "sha256", "sha512", "signum", "slice", "sort", "split", "strlen", "substr", "subtract",
    "timeadd", "timestamp", "title", "trim", "trimprefix", "trimspace", "trimsuffix", "try",
    "unixtimestampparse", "upper", "urlencode", "uuidv4", "uuidv5", "values", "zipmap",
];

pub fn exists(name: &str) -> bool {
    NAMES.binary_search(&name).is_ok()
}

pub fn call(name: &str, args: Vec<Value>, cwd: Option<&str>) -> FnResult {
    if let Some(r) = strings::call(name, &args) {
        return r;
    }
    if let Some(r) = collections::call(name, &args) {
        return r;
    }
    if let Some(r) = numeric::call(name, &args) {
        return r;
    }
    if let Some(r) = encoding::call(name, &args) {
        return r;
    }
    if let Some(r) = time::call(name, &args) {
        return r;
    }
    if let Some(r) = net::call(name, &args) {
        return r;
    }
    match name {
        "homedir" => {
            arity(&args, 0)?;
            std::env::var("HOME").map(Value::String).map_err(|_| "cannot determine home directory".to_string())
        }
        "absolute_path" => Ok(Value::String(cwd.unwrap_or(".").to_string())),
        _ => Err(format!("function {name} is not supported")),
    }
}

pub use strings::clean_path;

pub(crate) fn arity(args: &[Value], n: usize) -> Result<(), String> {
    if args.len() != n {
        return Err(format!("expected {n} argument(s), got {}", args.len()));
    }
    Ok(())
}

pub(crate) fn arg_str(args: &[Value], i: usize) -> Result<String, String> {
    match args.get(i) {
        Some(Value::Null) => Err(format!("argument {} must not be null", i + 1)),
        Some(v) => v
            .as_string()
            .ok_or_else(|| format!("argument {} must be a string, got {}", i + 1, v.type_name())),
        None => Err(format!("missing argument {}", i + 1)),
    }
}

pub(crate) fn arg_num(args: &[Value], i: usize) -> Result<f64, String> {
    match args.get(i) {
        Some(v) => v
            .as_number()
            .ok_or_else(|| format!("argument {} must be a number, got {}", i + 1, v.type_name())),
        None => Err(format!("missing argument {}", i + 1)),
    }
}

pub(crate) fn arg_list(args: &[Value], i: usize) -> Result<Vec<Value>, String> {
    match args.get(i) {
        Some(Value::List(items)) => Ok(items.clone()),
        Some(v) => Err(format!("argument {} must be a list, got {}", i + 1, v.type_name())),
        None => Err(format!("missing argument {}", i + 1)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_sorted_for_binary_search() {
        let mut sorted = NAMES.to_vec();
        sorted.sort_unstable();
        assert_eq!(sorted, NAMES);
    }
}

/// Splits one CSV record into fields (quotes honoured).
pub fn csv_fields(s: &str) -> Result<Vec<String>, String> {
    let mut records = encoding::csv_records(s)?;
    Ok(if records.is_empty() { Vec::new() } else { records.swap_remove(0) })
}
