//! Lexical path cleaning, the way Go's `filepath.Clean` does it on Unix, so that
//! `./a`, `a//b` and `a/../b` name the same thing in patterns and in paths.

/// Collapses repeated slashes, drops `.` components, resolves `..` against the
/// component before it (or drops it at the root), removes a trailing slash, and
/// returns `.` for an empty result.
pub(super) fn clean(path: &str) -> String {
    let rooted = path.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => match parts.last() {
                Some(&last) if last != ".." => {
                    parts.pop();
                }
                // `..` at the root stays at the root.
                _ if rooted => {}
                _ => parts.push(".."),
            },
            other => parts.push(other),
        }
    }
    let joined = parts.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".to_string(),
        (false, false) => joined,
    }
}

#[cfg(test)]
mod tests {
    use super::clean;

    #[test]
    fn matches_go_filepath_clean() {
        let cases = [
            ("", "."),
            (".", "."),
            ("./", "."),
            ("a", "a"),
            ("./a", "a"),
            ("a/", "a"),
            ("a//b", "a/b"),
            ("a/./b", "a/b"),
            ("a/../b", "b"),
            ("a/b/../../c", "c"),
            ("..", ".."),
            ("../a", "../a"),
            ("a/../..", ".."),
            ("../../a/..", "../.."),
            ("/", "/"),
            ("//", "/"),
            ("/..", "/"),
            ("/../a", "/a"),
            ("/a/b/", "/a/b"),
            ("abc/def/../../..", ".."),
        ];
        for (input, expected) in cases {
            assert_eq!(clean(input), expected, "clean({input:?})");
        }
    }
}
