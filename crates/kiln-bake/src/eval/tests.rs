//! Evaluator unit tests: operators, templates, for-expressions, traversal,
//! user functions and positioned errors.

use crate::error::{BakeError, DiagKind};
use crate::value::Value;
use crate::{BakeFile, BakeRequest, eval_expression};

fn eval(expr: &str) -> Value {
    eval_expression(expr).unwrap_or_else(|e| panic!("{expr}: {e}"))
}

fn s(v: &str) -> Value {
    Value::str(v)
}

fn n(v: f64) -> Value {
    Value::Number(v)
}

#[test]
fn arithmetic_and_precedence() {
    assert_eq!(eval("1 + 2 * 3"), n(7.0));
    assert_eq!(eval("(1 + 2) * 3"), n(9.0));
    assert_eq!(eval("7 % 4 - -1"), n(4.0));
    assert_eq!(eval("10 / 4"), n(2.5));
    assert_eq!(eval("\"3\" + 1"), n(4.0));
}

#[test]
fn comparison_logic_and_equality() {
    assert_eq!(
        eval("1 < 2 && 2 <= 2 && 3 > 2 && !(1 >= 2)"),
        Value::Bool(true)
    );
    assert_eq!(eval("true || false"), Value::Bool(true));
    assert_eq!(eval("\"a\" == \"a\""), Value::Bool(true));
    // Different types are never equal, as in HCL.
    assert_eq!(eval("1 == \"1\""), Value::Bool(false));
    assert_eq!(eval("[1, 2] == [1, 2]"), Value::Bool(true));
    assert_eq!(eval("{a = 1} != {a = 2}"), Value::Bool(true));
}

#[test]
fn division_by_zero_is_an_error_not_a_panic() {
    assert!(eval_expression("1 / 0").is_err());
    assert!(eval_expression("1 % 0").is_err());
}

#[test]
fn conditionals_require_bool() {
    assert_eq!(eval("1 > 0 ? \"yes\" : \"no\""), s("yes"));
    let err = eval_expression("\"maybe\" ? 1 : 2").unwrap_err();
    assert!(err.to_string().contains("condition"), "{err}");
}

#[test]
fn templates_interpolate_and_keep_raw_single_values() {
    assert_eq!(eval("\"a-${1 + 1}-b\""), s("a-2-b"));
    // A lone interpolation yields the value itself, not a string.
    assert_eq!(eval("\"${[1, 2]}\""), Value::List(vec![n(1.0), n(2.0)]));
    assert_eq!(eval("\"$${literal}\""), s("${literal}"));
    assert_eq!(eval("\"%%{literal}\""), s("%{literal}"));
}

#[test]
fn template_directives() {
    assert_eq!(eval("\"%{ if 1 > 0 }yes%{ else }no%{ endif }\""), s("yes"));
    assert_eq!(
        eval(r#""%{ for x in ["a", "b"] }${x},%{ endfor }""#),
        s("a,b,")
    );
    assert_eq!(
        eval("\"%{ for k, v in {a = 1} }${k}=${v}%{ endfor }\""),
        s("a=1")
    );
    // `~` strips the whitespace next to the marker.
    assert_eq!(eval(r#""a  ${~ "b" ~}  c""#), s("abc"));
}

#[test]
fn null_in_template_is_an_error() {
    let err = eval_expression("\"x${null}\"").unwrap_err();
    assert!(err.to_string().contains("null"), "{err}");
}

#[test]
fn heredocs_are_dedented_with_dash() {
    let v = eval("<<-EOT\n    hello\n      world\n    EOT");
    assert_eq!(v, s("hello\n  world\n"));
}

#[test]
fn for_expressions() {
    assert_eq!(
        eval("[for v in [1, 2, 3]: v * 2 if v != 2]"),
        Value::List(vec![n(2.0), n(6.0)])
    );
    assert_eq!(
        eval("{for i, v in [\"a\", \"b\"]: v => i}"),
        eval("{a = 0, b = 1}")
    );
    let Value::Object(grouped) = eval("{for v in [\"a\", \"b\", \"a\"]: v => v...}") else {
        panic!("object expected")
    };
    assert_eq!(grouped["a"], Value::List(vec![s("a"), s("a")]));
    let err = eval_expression("{for v in [\"a\", \"a\"]: v => v}").unwrap_err();
    assert!(err.to_string().contains("Duplicate object key"), "{err}");
}

#[test]
fn index_attr_and_splat() {
    assert_eq!(eval("[10, 20][1]"), n(20.0));
    assert_eq!(eval("{a = {b = 3}}.a.b"), n(3.0));
    assert_eq!(eval("{a = 1}[\"a\"]"), n(1.0));
    assert_eq!(
        eval("[{x = 1}, {x = 2}][*].x"),
        Value::List(vec![n(1.0), n(2.0)])
    );
    assert_eq!(
        eval("[{x = 1}, {x = 2}].*.x"),
        Value::List(vec![n(1.0), n(2.0)])
    );
    assert!(eval_expression("[1][5]").is_err());
    assert!(eval_expression("{a = 1}.b").is_err());
}

#[test]
fn function_calls_and_expansion() {
    assert_eq!(eval("max(1, 5, 3)"), n(5.0));
    assert_eq!(eval("max([1, 5, 3]...)"), n(5.0));
    assert_eq!(eval("try(undefined_thing, \"fallback\")"), s("fallback"));
    assert_eq!(eval("can([][0])"), Value::Bool(false));
}

#[test]
fn unknown_names_report_position() {
    let err = eval_expression("(1 +\n  nope)").unwrap_err();
    let BakeError::Eval(diags) = &err else {
        panic!("{err:?}")
    };
    assert_eq!(diags[0].kind, DiagKind::UnknownVariable("nope".into()));
    assert_eq!((diags[0].pos.line, diags[0].pos.col), (2, 3));
    assert!(err.to_string().contains("<expr>:2:3"), "{err}");
    let err = eval_expression("nofunc(1)").unwrap_err();
    assert!(
        err.to_string()
            .contains("There is no function named \"nofunc\""),
        "{err}"
    );
}

fn parse_hcl(text: &str) -> Result<crate::Parsed, BakeError> {
    let req = BakeRequest {
        files: vec![BakeFile {
            name: "docker-bake.hcl".into(),
            content: text.into(),
        }],
        ..BakeRequest::default()
    };
    crate::parse(&req)
}

#[test]
fn user_functions_with_variadic_params() {
    let parsed = parse_hcl(
        r#"
function "joinall" {
  params = [sep]
  variadic_param = items
  result = join(sep, items)
}
target "t" {
  args = { v = joinall("-", "a", "b", "c") }
}
"#,
    )
    .unwrap();
    let t = parsed.config.target("t").unwrap();
    assert_eq!(t.args.as_ref().unwrap()["v"].as_deref(), Some("a-b-c"));
}

#[test]
fn recursive_user_function_is_an_error() {
    let err = parse_hcl(
        r#"
function "loop" {
  params = [x]
  result = loop(x)
}
target "t" { args = { v = loop(1) } }
"#,
    )
    .unwrap_err();
    assert!(err.to_string().contains("recurses too deeply"), "{err}");
}

#[test]
fn variable_cycles_are_detected() {
    let err = parse_hcl(
        "variable \"A\" { default = B }\nvariable \"B\" { default = A }\ntarget \"t\" {}\n",
    )
    .unwrap_err();
    assert!(err.to_string().contains("cycle"), "{err}");
}

#[test]
fn block_reference_cycles_are_detected() {
    let err = parse_hcl("target \"a\" { context = target.b.context }\ntarget \"b\" { context = target.a.context }\n").unwrap_err();
    assert!(err.to_string().contains("Cycle detected"), "{err}");
}

#[test]
fn errors_name_file_line_and_column() {
    let err = parse_hcl("target \"t\" {\n  tags = [1 + \"x\"]\n}\n").unwrap_err();
    assert!(err.to_string().starts_with("docker-bake.hcl:2:"), "{err}");
}
