//! Shell expansion must never panic, and must leave text without any special
//! character untouched.
#![no_main]

use kiln_frontend::shell::Lexer;
use libfuzzer_sys::fuzz_target;

fn env() -> Vec<(String, String)> {
    [
        ("PWD", "/home"),
        ("EMPTY", ""),
        ("SPACES", "  a  b  "),
        ("GLOB", "*?\\*"),
        ("PATHS", "/usr/local/bin:/usr/bin"),
        ("KOREAN", "한국어"),
        ("NL", "line1\nline2"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    let escape = if flags & 1 == 0 { '\\' } else { '`' };
    let lexer = Lexer::new(escape)
        .with_raw_quotes(flags & 2 != 0)
        .with_raw_escapes(flags & 4 != 0)
        .with_skip_quotes(flags & 8 != 0)
        .with_skip_unset(flags & 16 != 0);
    let env = env();

    let word = lexer.expand_word(text, &env);
    let words = lexer.expand_words_tracked(text, &env);
    assert_eq!(
        word.is_ok(),
        words.is_ok(),
        "word and words disagree on {text:?}"
    );
    if let (Ok(word), Ok(words)) = (&word, &words) {
        assert_eq!(word.used, words.used);
        assert_eq!(word.unset, words.unset);
        assert!(
            words.words.iter().all(|w| !w.is_empty()),
            "empty word from {text:?}"
        );
    }

    let special = |c: char| matches!(c, '$' | '\'' | '"') || c == escape;
    if !text.chars().any(special) {
        let word = word.expect("plain text always expands");
        assert_eq!(word.value, text);
        assert!(word.used.is_empty() && word.unset.is_empty());
    }
});
