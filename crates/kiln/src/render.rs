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

/// How long ago, in the words docker uses (`About a minute`, `3 days`, `2 months`).
pub fn human_duration(ms: i64) -> String {
    let secs = ms.max(0) / 1000;
    let plural = |n: i64, unit: &str| format!("{n} {unit}{}", if n == 1 { "" } else { "s" });
    let (minute, hour, day) = (60, 3600, 86_400);
    match secs {
        0 => "Less than a second".into(),
        s if s < minute => plural(s, "second"),
        s if s < 2 * minute => "About a minute".into(),
        s if s < hour => plural(s / minute, "minute"),
        s if s < 2 * hour => "About an hour".into(),
        s if s < 2 * day => plural(s / hour, "hour"),
        s if s < 14 * day => plural(s / day, "day"),
        s if s < 60 * day => plural(s / (7 * day), "week"),
        s if s < 730 * day => plural(s / (30 * day), "month"),
        s => plural(s / (365 * day), "year"),
    }
}

/// Rows of cells as a table: columns padded to their widest cell plus three spaces, as
/// docker prints `images` and `buildx du`; trailing spaces trimmed.
pub fn align_columns<R: AsRef<[String]>>(cells: &[R]) -> String {
    let columns = cells.iter().map(|r| r.as_ref().len()).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            cells
                .iter()
                .filter_map(|row| row.as_ref().get(c))
                .map(|cell| cell.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in cells {
        let row = row.as_ref();
        let mut line = String::new();
        for (c, cell) in row.iter().enumerate() {
            line.push_str(cell);
            if c + 1 < row.len() {
                let pad = widths.get(c).copied().unwrap_or(0) - cell.chars().count() + 3;
                line.push_str(&" ".repeat(pad));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn columns_line_up() {
        let cells = vec![
            vec!["ID".to_string(), "SIZE".to_string()],
            vec!["abcdef".to_string(), "1MB".to_string()],
        ];
        assert_eq!(
            super::align_columns(&cells),
            "ID       SIZE\nabcdef   1MB\n"
        );
    }
}
