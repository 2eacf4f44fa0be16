//! How the CLI prints results and errors.

/// Output format of `--call` results and listings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    #[default]
    Text,
    Json,
}

/// Prints an error the way every kiln command does and returns the exit code to use.
pub fn fail(context: &str, error: &dyn std::fmt::Display) -> i32 {
    eprintln!("ERROR: {context}: {error}");
    1
}

/// Serializes `value` as indented JSON on stdout.
pub fn print_json<T: serde::Serialize>(value: &T) -> i32 {
    match serde_json::to_string_pretty(value) {
        Ok(text) => {
            println!("{text}");
            0
        }
        Err(error) => fail("cannot encode JSON", &error),
    }
}
