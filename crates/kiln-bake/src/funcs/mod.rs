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
    "absolute",
    "add",
    "and",
    "base64decode",
    "base64encode",
    "basename",
    "bcrypt",
    "byteslen",
    "bytesslice",
    "can",
    "ceil",
    "chomp",
    "chunklist",
    "cidrhost",
    "cidrnetmask",
    "cidrsubnet",
    "cidrsubnets",
    "coalesce",
    "coalescelist",
    "compact",
    "concat",
    "contains",
    "convert",
    "csvdecode",
    "dirname",
    "distinct",
    "divide",
    "element",
    "equal",
    "flatten",
    "floor",
    "format",
    "formatdate",
    "formatlist",
    "formattimestamp",
    "greaterthan",
    "greaterthanorequalto",
    "hasindex",
    "homedir",
    "indent",
    "index",
    "indexof",
    "int",
    "join",
    "jsondecode",
    "jsonencode",
    "keys",
    "length",
    "lessthan",
    "lessthanorequalto",
    "log",
    "lookup",
    "lower",
    "max",
    "md5",
    "merge",
    "min",
    "modulo",
    "multiply",
    "negate",
    "not",
    "notequal",
    "or",
    "parseint",
    "pow",
    "range",
    "regex",
    "regex_replace",
    "regexall",
    "replace",
    "reverse",
    "reverselist",
    "rsadecrypt",
    "sanitize",
    "semvercmp",
    "sethaselement",
    "setintersection",
    "setproduct",
    "setsubtract",
    "setsymmetricdifference",
    "setunion",
    "sha1",
    "sha256",
    "sha512",
    "signum",
    "slice",
    "sort",
    "split",
    "strlen",
    "substr",
    "subtract",
    "timeadd",
    "timestamp",
    "title",
    "trim",
    "trimprefix",
    "trimspace",
    "trimsuffix",
    "try",
    "unixtimestampparse",
    "upper",
    "urlencode",
    "uuidv4",
    "uuidv5",
    "values",
    "zipmap",
];

pub fn exists(name: &str) -> bool {
    NAMES.binary_search(&name).is_ok()
}

pub fn call(name: &str, args: Vec<Value>) -> FnResult {
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
            std::env::var("HOME")
                .map(Value::String)
                .map_err(|_| "cannot determine home directory".to_string())
        }
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
        Some(v) => Err(format!(
            "argument {} must be a list, got {}",
            i + 1,
            v.type_name()
        )),
        None => Err(format!("missing argument {}", i + 1)),
    }
}

/// Splits one CSV record into fields (quotes honoured).
pub fn csv_fields(s: &str) -> Result<Vec<String>, String> {
    let mut records = encoding::csv_records(s)?;
    Ok(if records.is_empty() {
        Vec::new()
    } else {
        records.swap_remove(0)
    })
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

#[cfg(test)]
mod behaviour_tests {
    use crate::eval_expression;

    fn eval(e: &str) -> serde_json::Value {
        eval_expression(e)
            .unwrap_or_else(|err| panic!("{e}: {err}"))
            .to_json()
    }

    #[test]
    fn collection_functions() {
        assert_eq!(
            eval("flatten([[1], [2, [3]]])"),
            serde_json::json!([1, 2, 3])
        );
        assert_eq!(
            eval("setproduct([\"a\", \"b\"], [1])"),
            serde_json::json!([["a", 1], ["b", 1]])
        );
        assert_eq!(
            eval("zipmap([\"a\", \"b\"], [1, 2])"),
            serde_json::json!({"a": 1, "b": 2})
        );
        assert_eq!(eval("lookup({a = 1}, \"b\", 5)"), serde_json::json!(5));
        assert_eq!(eval("range(1, 7, 2)"), serde_json::json!([1, 3, 5]));
        assert_eq!(eval("distinct([1, 2, 1])"), serde_json::json!([1, 2]));
        assert_eq!(
            eval("compact([\"a\", \"\", null])"),
            serde_json::json!(["a"])
        );
        assert_eq!(eval("coalesce(null, \"\", \"x\")"), serde_json::json!(""));
        assert_eq!(
            eval("merge({a = 1}, {a = 2, b = 3})"),
            serde_json::json!({"a": 2, "b": 3})
        );
        assert_eq!(eval("slice([1, 2, 3], 1, 3)"), serde_json::json!([2, 3]));
        assert_eq!(
            eval("chunklist([1, 2, 3], 2)"),
            serde_json::json!([[1, 2], [3]])
        );
        assert!(eval_expression("element([], 0)").is_err());
    }

    #[test]
    fn string_functions() {
        assert_eq!(eval("split(\",\", \"a,b\")"), serde_json::json!(["a", "b"]));
        assert_eq!(eval("split(\",\", \"\")"), serde_json::json!([""]));
        assert_eq!(
            eval("regex(\"(\\\\d+)-(\\\\d+)\", \"10-20\")"),
            serde_json::json!(["10", "20"])
        );
        assert_eq!(
            eval("regex(\"(?P<a>x)\", \"x\")"),
            serde_json::json!({"a": "x"})
        );
        assert_eq!(
            eval("replace(\"a-b-c\", \"/-/\", \"_\")"),
            serde_json::json!("a_b_c")
        );
        assert_eq!(
            eval("regex_replace(\"v1.2\", \"v(\\\\d)\", \"$1\")"),
            serde_json::json!("1.2")
        );
        assert_eq!(eval("substr(\"hello\", -3, 2)"), serde_json::json!("ll"));
        assert_eq!(
            eval("title(\"hello world\")"),
            serde_json::json!("Hello World")
        );
        assert_eq!(eval("trim(\"--a--\", \"-\")"), serde_json::json!("a"));
        assert_eq!(
            eval("formatlist(\"%s=%d\", [\"a\", \"b\"], 1)"),
            serde_json::json!(["a=1", "b=1"])
        );
        assert_eq!(eval("indent(2, \"a\\nb\")"), serde_json::json!("a\n  b"));
        assert_eq!(
            eval("jsonencode({a = [1, true]})"),
            serde_json::json!("{\"a\":[1,true]}")
        );
        assert_eq!(eval("jsondecode(\"[1]\")"), serde_json::json!([1]));
        assert_eq!(
            eval("base64decode(base64encode(\"hi\"))"),
            serde_json::json!("hi")
        );
        assert_eq!(eval("convert(\"5\", number) + 1"), serde_json::json!(6));
        assert_eq!(eval("parseint(\"ff\", 16)"), serde_json::json!(255));
        assert!(eval_expression("parseint(\"1\", 99)").is_err());
        assert_eq!(
            eval("uuidv5(\"dns\", \"example.com\")"),
            serde_json::json!("cfbff0d1-9375-5685-968c-48ce8b15ae17")
        );
    }
}
