use super::*;

fn dumps(src: &str) -> Vec<String> {
    parse(src).unwrap().nodes.iter().map(Node::dump).collect()
}

#[test]
fn backtick_escape_continues_lines_and_keeps_backslashes() {
    let src = "# escape=`\nFROM windows\nRUN dir c:\\ `\n  && echo hi\n";
    let ast = parse(src).unwrap();
    assert_eq!(ast.escape, '`');
    assert_eq!(dumps(src)[1], r#"run "dir c:\\   && echo hi""#);
    assert_eq!((ast.nodes[1].start_line, ast.nodes[1].end_line), (3, 4));
}

#[test]
fn heredoc_bodies_are_attached_and_span_lines() {
    let src = "FROM a\nRUN <<EOF\necho $X\nEOF\nCOPY <<-'ONE' <<TWO /dst/\n\tbody1\n\tONE\nbody2\nTWO\nRUN echo done\n";
    let ast = parse(src).unwrap();
    let run = &ast.nodes[1];
    assert_eq!(run.heredocs.len(), 1);
    assert_eq!(run.heredocs[0].content, "echo $X\n");
    assert!(run.heredocs[0].expand);
    assert_eq!((run.start_line, run.end_line), (2, 4));
    let copy = &ast.nodes[2];
    assert_eq!(copy.heredocs.len(), 2);
    assert_eq!(copy.heredocs[0].name, "ONE");
    assert!(!copy.heredocs[0].expand && copy.heredocs[0].chomp);
    assert_eq!(copy.heredocs[0].chomped_content(), "body1\n");
    assert_eq!(copy.heredocs[1].content, "body2\n");
    assert_eq!((copy.start_line, copy.end_line), (5, 9));
    assert_eq!(ast.nodes[3].start_line, 10);
}

#[test]
fn heredoc_is_not_recognised_in_exec_form_or_other_instructions() {
    let ast = parse("FROM a\nRUN [\"cat\", \"<<EOF\"]\nENV A=<<EOF\n").unwrap();
    assert!(ast.nodes.iter().all(|n| n.heredocs.is_empty()));
}

#[test]
fn unterminated_heredoc_names_the_instruction_line() {
    let err = parse("FROM a\nRUN <<EOF\necho\n").unwrap_err();
    assert_eq!(err.start_line, 2);
    assert!(err.message.contains("unterminated heredoc"));
}

#[test]
fn comments_above_an_instruction_are_recorded() {
    let ast = parse("# first\n#\n# build stage\n# more\nFROM a AS build\nRUN x\n").unwrap();
    assert_eq!(ast.nodes[0].comments, vec!["build stage", "more"]);
    assert!(ast.nodes[1].comments.is_empty());
}

#[test]
fn directive_after_instruction_is_a_comment() {
    let ast = parse("FROM a\n# escape=`\nRUN a \\\n b\n").unwrap();
    assert_eq!(ast.escape, '\\');
    assert!(ast.directives.escape.is_none());
    assert_eq!(ast.nodes[1].dump(), r#"run "a  b""#);
}

#[test]
fn repeated_directive_fails_with_its_line() {
    let err = parse("# syntax=a\n# Syntax=b\nFROM x\n").unwrap_err();
    assert_eq!(err.start_line, 2);
}

#[test]
fn empty_continuation_lines_warn() {
    let ast = parse("FROM a\nRUN a \\\n\n b\n").unwrap();
    assert_eq!(ast.warnings.len(), 1);
    assert_eq!(ast.nodes[1].dump(), r#"run "a  b""#);
}

#[test]
fn bom_is_ignored_and_crlf_lines_work() {
    let ast = parse("\u{feff}FROM a\r\nRUN b \\\r\n c\r\n").unwrap();
    assert_eq!(ast.nodes[1].dump(), r#"run "b  c""#);
}

#[test]
fn directives_are_not_kept_as_comments() {
    let ast =
        parse("# syntax=docker/dockerfile:1\n# check=skip=all\n# base the base\nFROM a AS base\n")
            .unwrap();
    assert_eq!(ast.nodes[0].comments, vec!["base the base"]);
    assert_eq!(ast.directives.check.as_ref().map(|d| d.line), Some(2));
}
