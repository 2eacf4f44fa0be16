//! `kiln du` and `kiln prune`: the build cache's disk usage and its garbage collection,
//! with the flags and output of `docker buildx du` / `docker buildx prune`.

use std::io::{BufRead, IsTerminal, Write};
use std::path::Path;

use kiln_store::gc::{self, PrunePolicy, RecordKind, UsageRecord, format_size};
use serde::Serialize;

use super::open_store;
use crate::render::{fail, human_duration, print_json};

#[derive(clap::Args, Debug)]
pub struct DuArgs {
    /// Show every field of every record
    #[arg(long)]
    pub verbose: bool,
    /// "table" (default) or "json"
    #[arg(long, default_value = "table")]
    pub format: String,
}

#[derive(clap::Args, Debug)]
pub struct PruneArgs {
    /// Also remove what the latest build of each tagged image uses, and cache mounts
    #[arg(short, long)]
    pub all: bool,
    /// Filter: until=DURATION (only what was last used longer ago), type=regular|exec.cachemount|blob
    #[arg(long = "filter", value_name = "FILTER")]
    pub filters: Vec<String>,
    /// Amount of disk space to keep for cache (older name of --reserved-space)
    #[arg(long, value_name = "SIZE")]
    pub keep_storage: Option<String>,
    /// Amount of disk space always allowed to keep for cache
    #[arg(long, value_name = "SIZE")]
    pub reserved_space: Option<String>,
    /// Maximum amount of disk space allowed to keep for cache
    #[arg(long, value_name = "SIZE")]
    pub max_used_space: Option<String>,
    /// Target amount of free disk space after pruning
    #[arg(long, value_name = "SIZE")]
    pub min_free_space: Option<String>,
    /// Do not prompt for confirmation
    #[arg(short, long)]
    pub force: bool,
    /// Print every field of each removed record
    #[arg(long)]
    pub verbose: bool,
}

pub fn run_du(args: &DuArgs, root: Option<&Path>) -> i32 {
    let json = match args.format.as_str() {
        "table" | "" => false,
        "json" => true,
        other => return fail("du", &format!("unknown format {other:?} (table or json)")),
    };
    let store = match open_store(root) {
        Ok(s) => s,
        Err(e) => return fail("store", &e),
    };
    let usage = match gc::usage(&store) {
        Ok(u) => u,
        Err(e) => return fail("du", &e),
    };
    let now = kiln_store::fsutil::now_ms();
    if json {
        let rows: Vec<JsonRecord> = usage.records.iter().map(JsonRecord::from).collect();
        return print_json(&rows);
    }
    let mut out = if args.verbose {
        usage
            .records
            .iter()
            .map(|r| verbose(r, now))
            .collect::<String>()
    } else {
        table(&usage.records, now)
    };
    let shared: u64 = usage
        .records
        .iter()
        .filter(|r| r.shared)
        .map(|r| r.size)
        .sum();
    out.push('\n');
    if shared > 0 {
        out.push_str(&format!("Shared:\t\t{}\n", format_size(shared)));
        out.push_str(&format!(
            "Private:\t{}\n",
            format_size(usage.total - shared)
        ));
    }
    out.push_str(&format!(
        "Reclaimable:\t{}\n",
        format_size(usage.reclaimable)
    ));
    out.push_str(&format!("Total:\t\t{}\n", format_size(usage.total)));
    print!("{out}");
    0
}

pub fn run_prune(args: &PruneArgs, root: Option<&Path>) -> i32 {
    let policy = match policy_from_args(args) {
        Ok(p) => p,
        Err(e) => return fail("prune", &e),
    };
    if !args.force && !confirm(args.all) {
        return 0;
    }
    let store = match open_store(root) {
        Ok(s) => s,
        Err(e) => return fail("store", &e),
    };
    let report = match gc::prune(&store, &policy) {
        Ok(r) => r,
        Err(e) => return fail("prune", &e),
    };
    let now = kiln_store::fsutil::now_ms();
    let mut out = if args.verbose {
        report
            .removed
            .iter()
            .map(|r| verbose(r, now))
            .collect::<String>()
    } else if report.removed.is_empty() {
        String::new()
    } else {
        table(&report.removed, now)
    };
    out.push_str(&format!("Total:\t{}\n", format_size(report.reclaimed)));
    print!("{out}");
    0
}

fn policy_from_args(args: &PruneArgs) -> Result<PrunePolicy, String> {
    let space = |v: &Option<String>| {
        v.as_deref()
            .map(gc::parse_space)
            .transpose()
            .map_err(|e| e.to_string())
    };
    let mut policy = PrunePolicy {
        all: args.all,
        keep_storage: space(&args.keep_storage)?,
        reserved_space: space(&args.reserved_space)?,
        max_used_space: space(&args.max_used_space)?,
        min_free_space: space(&args.min_free_space)?,
        ..PrunePolicy::default()
    };
    for filter in &args.filters {
        let (key, value) = gc::split_filter(filter)
            .ok_or_else(|| format!("invalid filter {filter:?} (expected KEY=VALUE)"))?;
        match key {
            "until" | "unused-for" => {
                policy.keep_duration = Some(gc::parse_duration(value).map_err(|e| e.to_string())?);
            }
            "type" => policy
                .kinds
                .push(RecordKind::parse(value).map_err(|e| e.to_string())?),
            other => return Err(format!("unsupported filter {other:?} (until, type)")),
        }
    }
    Ok(policy)
}

/// Asks on the terminal, as docker does; without a terminal there is nobody to ask, and
/// nothing is removed unless `--force` says so.
fn confirm(all: bool) -> bool {
    let what = if all {
        "all build cache"
    } else {
        "all build cache not kept by a tagged image's latest build"
    };
    if !std::io::stdin().is_terminal() {
        eprintln!("kiln prune: would remove {what}; pass --force to do so without a prompt");
        return false;
    }
    eprint!("WARNING! This will remove {what}.\nAre you sure you want to continue? [y/N] ");
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    if std::io::stdin().lock().read_line(&mut line).is_err() {
        return false;
    }
    matches!(line.trim(), "y" | "Y" | "yes" | "Yes")
}

fn table(records: &[UsageRecord], now: i64) -> String {
    let mut cells = vec![[
        "ID".to_owned(),
        "RECLAIMABLE".into(),
        "SIZE".into(),
        "LAST ACCESSED".into(),
    ]];
    for r in records {
        // As in docker, `*` marks what is in use right now.
        let id = if r.in_use {
            format!("{}*", r.id)
        } else {
            r.id.clone()
        };
        cells.push([
            id,
            r.reclaimable.to_string(),
            format_size(r.size),
            format!("{} ago", human_duration(now - r.last_used_ms)),
        ]);
    }
    crate::render::align_columns(&cells)
}

fn verbose(r: &UsageRecord, now: i64) -> String {
    let mut out = format!("ID:\t\t{}\n", r.id);
    if let Some(p) = &r.parent {
        out.push_str(&format!("Parent:\t\t{p}\n"));
    }
    out.push_str(&format!("Type:\t\t{}\n", r.kind));
    out.push_str(&format!("Description:\t{}\n", r.description));
    out.push_str(&format!("In use:\t\t{}\n", r.in_use));
    out.push_str(&format!("Reclaimable:\t{}\n", r.reclaimable));
    out.push_str(&format!("Shared:\t\t{}\n", r.shared));
    out.push_str(&format!("Size:\t\t{}\n", format_size(r.size)));
    out.push_str(&format!(
        "Last used:\t{} ago\n\n",
        human_duration(now - r.last_used_ms)
    ));
    out
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct JsonRecord<'a> {
    #[serde(rename = "ID")]
    id: &'a str,
    #[serde(rename = "Type")]
    kind: &'static str,
    parent: Option<&'a str>,
    description: &'a str,
    in_use: bool,
    reclaimable: bool,
    shared: bool,
    size: u64,
    /// Milliseconds since the Unix epoch.
    last_used_ms: i64,
}

impl<'a> From<&'a UsageRecord> for JsonRecord<'a> {
    fn from(r: &'a UsageRecord) -> Self {
        JsonRecord {
            id: &r.id,
            kind: r.kind.as_str(),
            parent: r.parent.as_deref(),
            description: &r.description,
            in_use: r.in_use,
            reclaimable: r.reclaimable,
            shared: r.shared,
            size: r.size,
            last_used_ms: r.last_used_ms,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(filters: &[&str]) -> PruneArgs {
        PruneArgs {
            all: false,
            filters: filters.iter().map(|s| s.to_string()).collect(),
            keep_storage: Some("1GB".into()),
            reserved_space: None,
            max_used_space: Some("50%".into()),
            min_free_space: None,
            force: true,
            verbose: false,
        }
    }

    #[test]
    fn flags_become_a_policy() {
        let p = policy_from_args(&args(&["until=24h", "type=exec.cachemount"])).unwrap();
        assert_eq!(
            p.keep_duration,
            Some(std::time::Duration::from_secs(86_400))
        );
        assert_eq!(p.kinds, [RecordKind::CacheMount]);
        assert_eq!(p.keep_storage, Some(gc::Space::Bytes(1 << 30)));
        assert_eq!(p.max_used_space, Some(gc::Space::Percent(50.0)));
        assert!(policy_from_args(&args(&["label=x"])).is_err());
        assert!(policy_from_args(&args(&["until=soon"])).is_err());
    }

    #[test]
    fn table_lines_up_and_marks_in_use() {
        let r = UsageRecord {
            id: "abc".into(),
            kind: RecordKind::Snapshot,
            size: 4_261_000,
            last_used_ms: 0,
            shared: false,
            reclaimable: true,
            in_use: true,
            parent: None,
            description: "RUN x".into(),
        };
        let text = table(&[r], 3 * 86_400_000);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "ID     RECLAIMABLE   SIZE     LAST ACCESSED");
        assert_eq!(lines[1], "abc*   true          4.26MB   3 days ago");
    }
}
