//! `kiln images`, `rmi`, `save`, `load` and `import`: the image store from the command
//! line, with the flags and output of their docker namesakes.

use std::collections::BTreeSet;
use std::fs::File;
use std::io::{self, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use kiln_exporter::imagestore::{self, ImageSummary, ImportOptions};
use kiln_exporter::{ImageName, Timestamp, parse_platform, write_docker_archive};
use kiln_store::Store;
use serde::Serialize;

use super::open_store;
use crate::render::{fail, human_duration};

#[derive(clap::Args, Debug)]
pub struct ImagesArgs {
    /// Only images of this repository, or of this REPOSITORY:TAG
    pub reference: Option<String>,
    /// "table" (default) or "json" (one object per line)
    #[arg(long, default_value = "table")]
    pub format: String,
    /// Only show image IDs
    #[arg(short, long)]
    pub quiet: bool,
    /// Show full image IDs
    #[arg(long = "no-trunc")]
    pub no_trunc: bool,
    /// Show manifest digests
    #[arg(long)]
    pub digests: bool,
}

#[derive(clap::Args, Debug)]
pub struct RmiArgs {
    /// Images to remove: names, IDs or ID prefixes
    #[arg(required = true)]
    pub images: Vec<String>,
    /// Remove every name of an image given by ID
    #[arg(short, long)]
    pub force: bool,
}

#[derive(clap::Args, Debug)]
pub struct SaveArgs {
    /// Images to save (names or IDs); all must be the same image
    #[arg(required = true)]
    pub images: Vec<String>,
    /// Write to this file instead of stdout
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

#[derive(clap::Args, Debug)]
pub struct LoadArgs {
    /// Read from this docker or OCI archive instead of stdin
    #[arg(short, long, value_name = "FILE")]
    pub input: Option<PathBuf>,
    /// Accepted for docker compatibility; kiln load prints no progress
    #[arg(short, long)]
    pub quiet: bool,
}

#[derive(clap::Args, Debug)]
pub struct ImportArgs {
    /// Root filesystem tarball (plain, gzip or zstd), or "-" for stdin
    pub file: String,
    /// Name of the new image: REPOSITORY[:TAG]
    pub reference: Option<String>,
    /// Dockerfile instruction applied to the config (CMD, ENTRYPOINT, ENV, ...); repeatable
    #[arg(short, long = "change", value_name = "INSTRUCTION")]
    pub changes: Vec<String>,
    /// Comment recorded in the image history
    #[arg(short, long)]
    pub message: Option<String>,
    /// Platform of the image (default: this machine's)
    #[arg(long)]
    pub platform: Option<String>,
}

macro_rules! store_or_fail {
    ($root:expr) => {
        match open_store($root) {
            Ok(store) => store,
            Err(message) => return fail("store", &message),
        }
    };
}

pub fn run_images(args: &ImagesArgs, root: Option<&Path>) -> i32 {
    let json = match args.format.as_str() {
        "table" | "" => false,
        "json" => true,
        other => {
            return fail(
                "images",
                &format!("unknown format {other:?} (table or json)"),
            );
        }
    };
    let store = store_or_fail!(root);
    let rows = match imagestore::list(&store) {
        Ok(rows) => rows,
        Err(e) => return fail("images", &e),
    };
    let rows: Vec<ImageSummary> = match &args.reference {
        Some(filter) => rows
            .into_iter()
            .filter(|r| matches_filter(r, filter))
            .collect(),
        None => rows,
    };
    let now_ms = kiln_store::fsutil::now_ms();
    let out = if args.quiet {
        let mut seen = BTreeSet::new();
        rows.iter()
            .map(|r| short_id(&r.id, args.no_trunc))
            .filter(|id| seen.insert(id.clone()))
            .map(|id| id + "\n")
            .collect()
    } else if json {
        json_lines(&rows, now_ms, args.no_trunc)
    } else {
        table(&rows, now_ms, args.no_trunc, args.digests)
    };
    print!("{out}");
    0
}

/// `busybox` keeps every tag of the repository; `busybox:1` only that one.
fn matches_filter(row: &ImageSummary, filter: &str) -> bool {
    let Ok(wanted) = ImageName::parse(filter) else {
        return false;
    };
    let Ok(have) = ImageName::parse(&row.name) else {
        return false;
    };
    let after_slash = filter.rfind('/').map_or(0, |i| i + 1);
    let tagged = filter[after_slash..].contains(':');
    have.repository == wanted.repository && (!tagged || have.tag == wanted.tag)
}

fn short_id(id: &str, no_trunc: bool) -> String {
    if id.is_empty() {
        // `imagestore::list` leaves the ID of an image with missing blobs empty.
        return "<damaged>".to_owned();
    }
    if no_trunc {
        return id.to_owned();
    }
    id.trim_start_matches("sha256:").chars().take(12).collect()
}

fn table(rows: &[ImageSummary], now_ms: i64, no_trunc: bool, digests: bool) -> String {
    let mut header = vec!["REPOSITORY", "TAG"];
    if digests {
        header.push("DIGEST");
    }
    header.extend(["IMAGE ID", "CREATED", "SIZE"]);
    let mut cells: Vec<Vec<String>> = vec![header.iter().map(|h| h.to_string()).collect()];
    for r in rows {
        let mut row = vec![r.repository.clone(), r.tag.clone()];
        if digests {
            row.push(r.manifest.clone());
        }
        row.extend([
            short_id(&r.id, no_trunc),
            format!("{} ago", human_duration(now_ms - r.created_ms)),
            kiln_store::gc::format_size(r.size),
        ]);
        cells.push(row);
    }
    crate::render::align_columns(&cells)
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct JsonRow<'a> {
    repository: &'a str,
    tag: &'a str,
    #[serde(rename = "ID")]
    id: String,
    digest: &'a str,
    created_at: String,
    created_since: String,
    size: String,
    name: &'a str,
}

fn json_lines(rows: &[ImageSummary], now_ms: i64, no_trunc: bool) -> String {
    let mut out = String::new();
    for r in rows {
        let created = Timestamp::from_unix(r.created_ms.div_euclid(1000)).to_string();
        let row = JsonRow {
            repository: &r.repository,
            tag: &r.tag,
            id: short_id(&r.id, no_trunc),
            digest: &r.manifest,
            // Docker's layout of a UTC time: `2024-05-01 10:00:00 +0000 UTC`.
            created_at: format!(
                "{} +0000 UTC",
                created.trim_end_matches('Z').replace('T', " ")
            ),
            created_since: format!("{} ago", human_duration(now_ms - r.created_ms)),
            size: kiln_store::gc::format_size(r.size),
            name: &r.name,
        };
        if let Ok(line) = serde_json::to_string(&row) {
            out.push_str(&line);
            out.push('\n');
        }
    }
    out
}

pub fn run_rmi(args: &RmiArgs, root: Option<&Path>) -> i32 {
    let store = store_or_fail!(root);
    let mut code = 0;
    for reference in &args.images {
        match imagestore::remove(&store, reference, args.force) {
            Ok(names) => {
                for name in names {
                    if imagestore::is_dangling(&name) {
                        println!("Deleted: {}", name.trim_start_matches('@'));
                    } else {
                        println!("Untagged: {}", imagestore::familiar_name(&name));
                    }
                }
            }
            Err(e) => code = fail(reference, &e),
        }
    }
    code
}

pub fn run_save(args: &SaveArgs, root: Option<&Path>) -> i32 {
    if args.output.is_none() && io::stdout().is_terminal() {
        return fail(
            "save",
            &"refusing to write an archive to a terminal; use -o FILE or redirect stdout",
        );
    }
    let store = store_or_fail!(root);
    let mut image = None;
    let mut names = Vec::new();
    for reference in &args.images {
        let found = match imagestore::open(&store, reference) {
            Ok(found) => found,
            Err(e) => return fail(reference, &e),
        };
        if let Some(first) = &image
            && !same_image(first, &found)
        {
            return fail(
                "save",
                &"saving several different images in one archive is not supported; save them one by one",
            );
        }
        // A name given by the user is recorded in the archive; an ID adds no name.
        if let Ok(normalized) = imagestore::normalize_name(reference)
            && found.names.contains(&normalized)
            && let Ok(name) = ImageName::parse(&normalized)
            && !names.contains(&name)
        {
            names.push(name);
        }
        image.get_or_insert(found);
    }
    let Some(image) = image else {
        return fail("save", &"no image given");
    };
    let built = image.to_built_image();
    let result = match &args.output {
        Some(path) => write_docker_archive(&built, path, &names).map_err(|e| e.to_string()),
        None => save_to_stdout(&store, &built, &names),
    };
    match result {
        Ok(()) => 0,
        Err(e) => fail("save", &e),
    }
}

fn same_image(a: &imagestore::StoredImage, b: &imagestore::StoredImage) -> bool {
    a.manifest_digest == b.manifest_digest
}

/// Archives are written whole to a file first, so a failure never leaves half an archive
/// behind as if it were complete.
fn save_to_stdout(
    store: &Store,
    built: &kiln_exporter::BuiltImage,
    names: &[ImageName],
) -> Result<(), String> {
    let temp = tempfile_in(store, "save")?;
    write_docker_archive(built, &temp.path, names).map_err(|e| e.to_string())?;
    let mut file = File::open(&temp.path).map_err(|e| e.to_string())?;
    let mut stdout = io::stdout().lock();
    io::copy(&mut file, &mut stdout).map_err(|e| format!("write to stdout: {e}"))?;
    stdout.flush().map_err(|e| format!("write to stdout: {e}"))
}

/// A path in the store's scratch space, removed when dropped. Named `blob-*` so the store
/// also cleans it up after a crash.
struct TempPath {
    path: PathBuf,
}

impl Drop for TempPath {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

fn tempfile_in(store: &Store, what: &str) -> Result<TempPath, String> {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let path = store
        .tmp_dir()
        .join(format!("blob-{what}-{}-{nanos}", std::process::id()));
    Ok(TempPath { path })
}

pub fn run_load(args: &LoadArgs, root: Option<&Path>) -> i32 {
    let store = store_or_fail!(root);
    let stdin_copy;
    let path = match &args.input {
        Some(p) => p.as_path(),
        None => {
            if io::stdin().is_terminal() {
                return fail("load", &"no input: use -i FILE or pipe an archive to stdin");
            }
            // Archives are read by random access; stdin is not seekable.
            stdin_copy = match copy_stdin(&store) {
                Ok(t) => t,
                Err(e) => return fail("load", &e),
            };
            stdin_copy.path.as_path()
        }
    };
    let loaded = match imagestore::load_archive(&store, path) {
        Ok(loaded) => loaded,
        Err(e) => return fail("load", &e),
    };
    for image in loaded {
        if image.names.is_empty() {
            println!("Loaded image ID: {}", image.id);
        }
        for name in &image.names {
            println!("Loaded image: {}", imagestore::familiar_name(name));
        }
    }
    0
}

fn copy_stdin(store: &Store) -> Result<TempPath, String> {
    let temp = tempfile_in(store, "load")?;
    let mut file = File::create(&temp.path).map_err(|e| e.to_string())?;
    io::copy(&mut io::stdin().lock(), &mut file).map_err(|e| format!("read stdin: {e}"))?;
    Ok(temp)
}

pub fn run_import(args: &ImportArgs, root: Option<&Path>) -> i32 {
    if args.file.starts_with("http://") || args.file.starts_with("https://") {
        return fail(
            "import",
            &"importing from a URL is not supported; download the file first",
        );
    }
    let platform = match args.platform.as_deref().map(parse_platform).transpose() {
        Ok(p) => p,
        Err(e) => return fail("import", &e),
    };
    let store = store_or_fail!(root);
    let options = ImportOptions {
        name: args.reference.clone(),
        changes: args.changes.clone(),
        message: args.message.clone(),
        platform,
    };
    let result = if args.file == "-" {
        imagestore::import_rootfs_reader(&store, io::stdin().lock(), "-", &options)
    } else {
        imagestore::import_rootfs_tar(&store, Path::new(&args.file), &options)
    };
    let manifest = match result {
        Ok(m) => m,
        Err(e) => return fail("import", &e),
    };
    match imagestore::open(&store, &manifest.to_string()) {
        Ok(image) => {
            println!("{}", image.config_digest);
            0
        }
        Err(e) => fail("import", &e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kiln_exporter::imagestore::NONE;

    #[test]
    fn sizes_and_durations_read_like_docker() {
        assert_eq!(kiln_store::gc::format_size(0), "0B");
        assert_eq!(kiln_store::gc::format_size(999), "999B");
        assert_eq!(kiln_store::gc::format_size(4_261_000), "4.26MB");
        assert_eq!(kiln_store::gc::format_size(1_000_000), "1MB");
        assert_eq!(kiln_store::gc::format_size(12_340), "12.3kB");
        assert_eq!(human_duration(500), "Less than a second");
        assert_eq!(human_duration(1000), "1 second");
        assert_eq!(human_duration(90_000), "About a minute");
        assert_eq!(human_duration(3 * 86_400_000), "3 days");
        assert_eq!(human_duration(65 * 86_400_000), "2 months");
        assert_eq!(human_duration(800 * 86_400_000), "2 years");
    }

    fn row(name: &str, id: &str) -> ImageSummary {
        let (repository, tag) = imagestore::display_parts(name);
        ImageSummary {
            name: name.into(),
            repository,
            tag,
            manifest: format!("sha256:{}", "m".repeat(64)),
            id: id.into(),
            created_ms: 0,
            size: 4_261_000,
        }
    }

    #[test]
    fn table_aligns_columns_and_truncates_ids() {
        let id = format!("sha256:{}", "ab".repeat(32));
        let rows = [
            row("docker.io/library/busybox:latest", &id),
            row(&format!("@sha256:{}", "c".repeat(64)), &id),
        ];
        let text = table(&rows, 3 * 86_400_000, false, false);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "REPOSITORY   TAG      IMAGE ID       CREATED      SIZE"
        );
        assert_eq!(
            lines[1],
            "busybox      latest   abababababab   3 days ago   4.26MB"
        );
        assert!(lines[2].starts_with(&format!("{NONE}       {NONE}   abababababab")));
    }

    #[test]
    fn filters_by_repository_and_tag() {
        let id = format!("sha256:{}", "a".repeat(64));
        let r = row("docker.io/library/busybox:1", &id);
        assert!(matches_filter(&r, "busybox"));
        assert!(matches_filter(&r, "docker.io/library/busybox:1"));
        assert!(!matches_filter(&r, "busybox:2"));
        assert!(!matches_filter(&r, "alpine"));
    }
}
