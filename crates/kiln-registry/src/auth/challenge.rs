//! `WWW-Authenticate` challenges (RFC 7235) as registries send them.

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Challenge {
    Basic {
        realm: Option<String>,
    },
    Bearer {
        realm: String,
        service: Option<String>,
        scope: Option<String>,
    },
}

/// Parses every Basic or Bearer challenge in a header value; other schemes are skipped.
pub fn parse_challenges(header: &str) -> Vec<Challenge> {
    let mut out = Vec::new();
    for (scheme, params) in split_challenges(header) {
        let get = |k: &str| {
            params
                .iter()
                .find(|(key, _)| key.eq_ignore_ascii_case(k))
                .map(|(_, v)| v.clone())
        };
        if scheme.eq_ignore_ascii_case("basic") {
            out.push(Challenge::Basic {
                realm: get("realm"),
            });
        } else if scheme.eq_ignore_ascii_case("bearer")
            && let Some(realm) = get("realm")
        {
            out.push(Challenge::Bearer {
                realm,
                service: get("service"),
                scope: get("scope"),
            });
        }
    }
    out
}

type Params = Vec<(String, String)>;

fn split_challenges(header: &str) -> Vec<(String, Params)> {
    let s = header.as_bytes();
    let mut i = 0;
    let mut out: Vec<(String, Params)> = Vec::new();
    let skip = |i: &mut usize, set: &[u8]| {
        while *i < s.len() && set.contains(&s[*i]) {
            *i += 1;
        }
    };
    let token = |i: &mut usize| {
        let start = *i;
        while *i < s.len() && !b" \t,=\"".contains(&s[*i]) {
            *i += 1;
        }
        header[start..*i].to_string()
    };
    loop {
        skip(&mut i, b" \t,");
        if i >= s.len() {
            break;
        }
        let word = token(&mut i);
        if word.is_empty() {
            // Stray character: step over it rather than loop forever.
            i += 1;
            continue;
        }
        let after_word = i;
        skip(&mut i, b" \t");
        if i < s.len() && s[i] == b'=' && !out.is_empty() {
            i += 1;
            skip(&mut i, b" \t");
            let value = if i < s.len() && s[i] == b'"' {
                i += 1;
                let mut v = String::new();
                while i < s.len() && s[i] != b'"' {
                    if s[i] == b'\\' && i + 1 < s.len() {
                        i += 1;
                    }
                    let ch_len = utf8_len(s[i]);
                    v.push_str(&header[i..(i + ch_len).min(s.len())]);
                    i += ch_len;
                }
                i += 1;
                v
            } else {
                token(&mut i)
            };
            out.last_mut()
                .expect("checked non-empty")
                .1
                .push((word, value));
        } else {
            i = after_word;
            out.push((word, Vec::new()));
        }
    }
    out
}

fn utf8_len(first: u8) -> usize {
    match first {
        0xF0..=0xFF => 4,
        0xE0..=0xEF => 3,
        0xC0..=0xDF => 2,
        _ => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_with_quoted_commas() {
        let c = parse_challenges(
            r#"Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull,push""#,
        );
        assert_eq!(
            c,
            vec![Challenge::Bearer {
                realm: "https://auth.example/token".into(),
                service: Some("registry.example".into()),
                scope: Some("repository:a/b:pull,push".into()),
            }]
        );
    }

    #[test]
    fn basic_and_several_challenges() {
        assert_eq!(
            parse_challenges(r#"Basic realm="Registry Realm""#),
            vec![Challenge::Basic {
                realm: Some("Registry Realm".into())
            }]
        );
        let c = parse_challenges(r#"Negotiate, Basic realm=x, bearer realm="r", service=s"#);
        assert_eq!(c.len(), 2);
        assert!(matches!(&c[1], Challenge::Bearer { service: Some(s), .. } if s == "s"));
        assert!(parse_challenges("").is_empty());
        assert!(parse_challenges("Bearer service=x").is_empty());
        assert!(parse_challenges(r#"Bearer realm="unterminated"#).len() == 1);
        assert!(parse_challenges("= , \"\" =").is_empty());
    }
}
