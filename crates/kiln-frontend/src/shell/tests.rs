use std::collections::{BTreeSet, HashMap};

use super::{Env, Lexer};

fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn expand(lexer: Lexer, word: &str, env: &dyn Env) -> String {
    match lexer.expand_word(word, env) {
        Ok(expansion) => expansion.value,
        Err(e) => panic!("{word:?} failed: {e}"),
    }
}

fn error(lexer: Lexer, word: &str, env: &dyn Env) -> String {
    match lexer.expand_word(word, env) {
        Ok(expansion) => panic!(
            "{word:?} expanded to {:?}, expected an error",
            expansion.value
        ),
        Err(e) => e.to_string(),
    }
}

fn names(list: &[&str]) -> BTreeSet<String> {
    list.iter().map(|s| s.to_string()).collect()
}

const BACKSLASH: Lexer = Lexer {
    escape: '\\',
    options: super::Options {
        raw_quotes: false,
        raw_escapes: false,
        skip_quotes: false,
        skip_unset: false,
    },
};

#[test]
fn backtick_escape_character() {
    let lexer = Lexer::new('`');
    let vars = env(&[("P", "/home")]);
    assert_eq!(expand(lexer, "a`$P", &vars), "a$P");
    assert_eq!(expand(lexer, "C:\\dir\\$P", &vars), "C:\\dir\\/home");
    assert_eq!(expand(lexer, "\"x`\"y\"", &vars), "x\"y");
    assert_eq!(expand(lexer, "\"x\\ty\"", &vars), "x\\ty");
    assert_eq!(expand(lexer, "a``b", &vars), "a`b");
    assert_eq!(expand(lexer, "end`", &vars), "end");
    assert_eq!(
        lexer.expand_words("a` b c", &vars).unwrap_or_default(),
        ["a b", "c"]
    );
}

#[test]
fn nested_defaults_and_alternatives() {
    let vars = env(&[("A", "a"), ("EMPTY", "")]);
    assert_eq!(expand(BACKSLASH, "${X:-${Y:-${A}}}", &vars), "a");
    assert_eq!(expand(BACKSLASH, "${X:-${Y:-${Z:-deep}}}", &vars), "deep");
    assert_eq!(expand(BACKSLASH, "${A:+[${A}${A}]}", &vars), "[aa]");
    assert_eq!(expand(BACKSLASH, "${EMPTY-unset}", &vars), "");
    assert_eq!(expand(BACKSLASH, "${EMPTY:-empty}", &vars), "empty");
    assert_eq!(expand(BACKSLASH, "${EMPTY+set}", &vars), "set");
    assert_eq!(expand(BACKSLASH, "${EMPTY:+set}", &vars), "");
    assert_eq!(expand(BACKSLASH, "${X:-\"quoted }\"}", &vars), "quoted }");
    assert_eq!(expand(BACKSLASH, "${X:-a\\}b}", &vars), "a}b");
}

#[test]
fn pattern_modifiers() {
    let vars = env(&[
        ("F", "archive.tar.gz"),
        ("P", "/usr/local/bin"),
        ("STAR", "*"),
    ]);
    assert_eq!(expand(BACKSLASH, "${F%.*}", &vars), "archive.tar");
    assert_eq!(expand(BACKSLASH, "${F%%.*}", &vars), "archive");
    assert_eq!(expand(BACKSLASH, "${F#*.}", &vars), "tar.gz");
    assert_eq!(expand(BACKSLASH, "${F##*.}", &vars), "gz");
    assert_eq!(expand(BACKSLASH, "${P##*/}", &vars), "bin");
    assert_eq!(expand(BACKSLASH, "${P%/*}", &vars), "/usr/local");
    assert_eq!(expand(BACKSLASH, "${F/.tar/}", &vars), "archive.gz");
    assert_eq!(expand(BACKSLASH, "${P//\\//:}", &vars), ":usr:local:bin");
    assert_eq!(
        expand(BACKSLASH, "${P/\\/usr/\\/opt}", &vars),
        "\\/opt/local/bin"
    );
    // A pattern that comes from a variable is still a pattern.
    assert_eq!(expand(BACKSLASH, "${F#$STAR}", &vars), "archive.tar.gz");
    assert_eq!(expand(BACKSLASH, "${F##$STAR}", &vars), "");
    // Only the operator's own second character selects the longest match.
    let hash = env(&[("V", "##x"), ("H", "#")]);
    assert_eq!(expand(BACKSLASH, "${V#$H}", &hash), "#x");
    assert_eq!(expand(BACKSLASH, "${V##$H}", &hash), "#x");
    assert_eq!(expand(BACKSLASH, "${V##*#}", &hash), "x");
    // Unset variables are empty before the pattern applies.
    assert_eq!(expand(BACKSLASH, "[${NOPE#x}${NOPE/a/b}]", &vars), "[]");
}

#[test]
fn pattern_errors_name_the_pattern() {
    let vars = env(&[("V", "v")]);
    assert!(error(BACKSLASH, "${V#\\x}", &vars).contains("invalid pattern"));
    assert!(error(BACKSLASH, "${V/a}", &vars).contains("missing '/'"));
    assert!(error(BACKSLASH, "${V//}", &vars).contains("missing '/'"));
    assert_eq!(expand(BACKSLASH, "${V///}", &vars), "v");
}

#[test]
fn syntax_errors() {
    let vars = env(&[]);
    for bad in [
        "${",
        "${}",
        "${:}",
        "${V",
        "${V:-x",
        "${V=x}",
        "${V:=x}",
        "${V:x}",
        "${V:}",
        "${V!}",
        "\"open",
        "'open",
        "${V:-\"x}",
    ] {
        let message = error(BACKSLASH, bad, &vars);
        assert!(
            message.contains(&format!("{bad:?}")),
            "{message:?} should quote the input {bad:?}"
        );
    }
    assert!(error(BACKSLASH, "${V=x}", &vars).contains("unsupported modifier (=)"));
    assert!(error(BACKSLASH, "${}", &vars).contains("bad substitution"));
    assert!(error(BACKSLASH, "${", &vars).contains("missing '}'"));
}

#[test]
fn required_variables_report_the_message() {
    let set = env(&[("VAR", "plain"), ("ARG", "x")]);
    let empty = env(&[("VAR", ""), ("ARG", "x")]);
    let unset = env(&[("ARG", "x")]);
    let no_empty = "${VAR:?message here$ARG}";
    let no_unset = "${VAR?message here$ARG}";
    assert_eq!(expand(BACKSLASH, no_empty, &set), "plain");
    assert!(error(BACKSLASH, no_empty, &empty).contains("VAR: message herex"));
    assert!(error(BACKSLASH, no_empty, &unset).contains("VAR: message herex"));
    assert_eq!(expand(BACKSLASH, no_unset, &set), "plain");
    assert_eq!(expand(BACKSLASH, no_unset, &empty), "");
    assert!(error(BACKSLASH, no_unset, &unset).contains("VAR: message herex"));
    assert!(error(BACKSLASH, "${VAR?}", &unset).contains("VAR: is not allowed to be unset"));
    assert!(error(BACKSLASH, "${VAR:?}", &empty).contains("VAR: is not allowed to be empty"));
}

#[test]
fn used_and_unset_are_tracked() {
    let vars = env(&[("FOO", "xxx"), ("BAR", "")]);
    let result = BACKSLASH
        .expand_word("${FOO:-aaa} ${BAR:-bbb} ${BAZ:-ccc} $FOO", &vars)
        .unwrap_or_default();
    assert_eq!(result.value, "xxx bbb ccc xxx");
    assert_eq!(result.used, names(&["BAR", "FOO"]));
    assert_eq!(result.unset, names(&["BAZ"]));

    // Default words are expanded (and their references recorded) even when unused,
    // so an instruction's dependencies don't change with the values.
    let result = BACKSLASH
        .expand_word("${FOO:-$OTHER}", &vars)
        .unwrap_or_default();
    assert_eq!(result.value, "xxx");
    assert_eq!(result.used, names(&["FOO"]));
    assert_eq!(result.unset, names(&["OTHER"]));

    let result = BACKSLASH
        .expand_word("'$FOO' \\$BAR x", &vars)
        .unwrap_or_default();
    assert!(result.used.is_empty() && result.unset.is_empty());

    let words = BACKSLASH
        .expand_words_tracked("$FOO ${NOPE}", &vars)
        .unwrap_or_default();
    assert_eq!(words.words, ["xxx"]);
    assert_eq!(words.used, names(&["FOO"]));
    assert_eq!(words.unset, names(&["NOPE"]));
}

#[test]
fn word_splitting() {
    let vars = env(&[("SPACE", " a  b "), ("EMPTY", "")]);
    let words = |text: &str| BACKSLASH.expand_words(text, &vars).unwrap_or_default();
    assert_eq!(words("x${SPACE}y"), ["x", "a", "b", "y"]);
    assert_eq!(words("x\"${SPACE}\"y"), ["x a  b y"]);
    assert_eq!(words("$EMPTY a $EMPTY"), ["a"]);
    // BuildKit never produces empty words, even from quoted empty strings.
    assert_eq!(words("\"\" a ''"), ["a"]);
    assert_eq!(words("a\\ b\tc\nd"), ["a b", "c", "d"]);
    assert!(BACKSLASH.expand_words("'open", &vars).is_err());
}

#[test]
fn options_keep_raw_text() {
    let vars = env(&[("SET", "v")]);
    let raw = Lexer::new('\\').with_raw_quotes(true).with_skip_unset(true);
    assert_eq!(expand(raw, "'a' \"$SET\"", &vars), "'a' \"v\"");
    assert_eq!(
        expand(raw, "$NOPE ${NOPE} ${NOPE:-d}", &vars),
        "$NOPE ${NOPE} ${NOPE:-d}"
    );
    assert_eq!(
        expand(raw, "${NOPE##*/} ${NOPE//a/b}", &vars),
        "${NOPE##*/} ${NOPE//a/b}"
    );
    let heredoc = Lexer::new('\\').with_skip_quotes(true);
    assert_eq!(
        expand(heredoc, "echo '$SET' \"x\"", &vars),
        "echo 'v' \"x\""
    );
    let escapes = Lexer::new('\\').with_raw_escapes(true);
    assert_eq!(expand(escapes, "a\\$SET", &vars), "a\\$SET");
}

#[test]
fn special_and_positional_parameters_are_never_set() {
    let vars = env(&[("A", "a")]);
    for word in ["$1", "${12}", "$@", "${#}", "$$", "${!}", "$0", "${-}"] {
        assert_eq!(expand(BACKSLASH, word, &vars), "", "{word}");
    }
    assert_eq!(expand(BACKSLASH, "$1a", &vars), "a");
    assert_eq!(expand(BACKSLASH, "${#:-d}", &vars), "d");
    assert_eq!(expand(BACKSLASH, "$", &vars), "$");
    assert_eq!(expand(BACKSLASH, "a$ b$", &vars), "a$ b$");
}

#[test]
fn unicode_names_and_values() {
    let vars = env(&[("KOREAN", "한국어"), ("이름", "값")]);
    assert_eq!(expand(BACKSLASH, "안녕$KOREAN!", &vars), "안녕한국어!");
    assert_eq!(expand(BACKSLASH, "$이름", &vars), "값");
    assert_eq!(expand(BACKSLASH, "${KOREAN#?}", &vars), "국어");
}

#[test]
fn deep_nesting_is_an_error_not_a_crash() {
    let depth = 10_000;
    let text = format!("{}x{}", "${A:-".repeat(depth), "}".repeat(depth));
    let message = error(BACKSLASH, &text, &env(&[]));
    assert!(message.contains("nested more than"), "{message}");
    let ok = format!("{}x{}", "${A:-".repeat(20), "}".repeat(20));
    assert_eq!(expand(BACKSLASH, &ok, &env(&[])), "x");
}

#[test]
fn ordered_pairs_env_uses_last_definition() {
    let pairs = vec![
        ("car".to_string(), "hat".to_string()),
        ("car".to_string(), "bike".to_string()),
    ];
    assert_eq!(expand(BACKSLASH, "$car", &pairs), "bike");
}

/// Found by fuzzing (slow unit, 14 s before the size cap): each nested replace-all
/// copies the inner result once per match, so output grows exponentially.
#[test]
fn nested_replace_all_is_capped_instead_of_exploding() {
    let vars = env(&[("P", "a:b:c:d:e:f:g:h")]);
    let depth = 12;
    let text = format!("{}X{}", "${P//:/".repeat(depth), "}".repeat(depth));
    let message = error(BACKSLASH, &text, &vars);
    assert!(message.contains("larger than"), "{message}");
    // A couple of levels are fine: 7 copies of 7 copies.
    let two = "${P//:/${P//:/-}}";
    let value = expand(BACKSLASH, two, &vars);
    assert_eq!(
        value.len(),
        "a:b:c:d:e:f:g:h".len() - 7 + 7 * ("a-b-c-d-e-f-g-h".len())
    );
}
