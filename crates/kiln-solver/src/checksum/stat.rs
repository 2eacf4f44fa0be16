//! Stat fingerprints: one digest over the stat data of every entry a selection covers
//! (path, type, device, inode, size, mtime, ctime, mode, owner, link target), in walk
//! order. Taking one walks and `lstat`s like a checksum but reads no file and asks the
//! store nothing, so it is what the whole-build short cut compares.
//!
//! Equal fingerprints mean nothing covered changed since the earlier walk, under the
//! trust the stat cache (`files.rs`) already places in stat data: a write to a file or
//! to its metadata sets its ctime to the current time, and ctime cannot be set back by
//! any caller, so an entry whose ctime is unchanged has not been written since. The one
//! gap is a write in the same timestamp tick as the walk that saw the entry (ticks are
//! up to a second on some filesystems): so an entry whose mtime or ctime lies within
//! [`RACY_WINDOW`] of the walk makes the fingerprint `None`, and the caller takes the
//! full checksum instead.

use std::path::Path;
use std::time::SystemTime;

use sha2::{Digest as _, Sha256};

use super::files::{RACY_WINDOW, nanos_since_epoch};
use super::select::Collector;
use super::{ChecksumError, Selection, canonical_root, collect, field, matchers};

/// The stat fingerprint of what `selection` covers in `root` now; `Ok(None)` when an
/// entry changed too recently to be judged by its stat data.
pub fn stat_fingerprint(
    root: &Path,
    selection: &Selection,
) -> Result<Option<String>, ChecksumError> {
    let walked_at = SystemTime::now();
    let root = canonical_root(root)?;
    let (ignore, exclude) = matchers(selection)?;
    let found = collect(&root, selection, &ignore, &exclude)?;
    Ok(of_entries(&root, selection, &found, walked_at))
}

/// The fingerprint of entries a walk that started at `walked_at` collected.
pub(super) fn of_entries(
    root: &Path,
    selection: &Selection,
    found: &Collector<'_>,
    walked_at: SystemTime,
) -> Option<String> {
    let settled_before = nanos_since_epoch(walked_at)? - RACY_WINDOW.as_nanos() as i64;
    let mut hasher = Sha256::new();
    hasher.update(b"kiln stat fingerprint v1\0");
    field(&mut hasher, root.as_os_str().as_encoded_bytes());
    field(
        &mut hasher,
        &serde_json::to_vec(selection).unwrap_or_default(),
    );
    for (rel, entry) in &found.entries {
        let meta = &entry.meta;
        let id = &meta.identity;
        if id.mtime_ns.max(id.ctime_ns) >= settled_before {
            return None;
        }
        field(&mut hasher, rel);
        hasher.update(meta.mode.to_le_bytes());
        hasher.update(id.dev.to_le_bytes());
        hasher.update(id.ino.to_le_bytes());
        hasher.update(id.size.to_le_bytes());
        hasher.update(id.mtime_ns.to_le_bytes());
        hasher.update(id.ctime_ns.to_le_bytes());
        hasher.update(meta.uid.to_le_bytes());
        hasher.update(meta.gid.to_le_bytes());
        hasher.update(meta.rdev.to_le_bytes());
        field(
            &mut hasher,
            entry.link_target.as_deref().unwrap_or_default(),
        );
    }
    Some(format!("stat:{}", hex::encode(hasher.finalize())))
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::time::Duration;

    use super::*;

    /// The fingerprint of `selection` as if taken well after every entry last changed.
    fn settled(root: &Path, selection: &Selection) -> String {
        let root = canonical_root(root).unwrap();
        let (ignore, exclude) = matchers(selection).unwrap();
        let found = collect(&root, selection, &ignore, &exclude).unwrap();
        let later = SystemTime::now() + Duration::from_secs(5);
        of_entries(&root, selection, &found, later).unwrap()
    }

    fn context() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (path, text) in [
            ("src/a/one.rs", "one"),
            ("src/b/two.rs", "two"),
            ("docs/guide.md", "guide"),
            ("build/out.o", "object"),
        ] {
            let path = dir.path().join(path);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, text).unwrap();
        }
        dir
    }

    #[test]
    fn unchanged_entries_give_the_same_fingerprint() {
        let dir = context();
        let whole = Selection::default();
        assert_eq!(settled(dir.path(), &whole), settled(dir.path(), &whole));
        let narrower = Selection {
            include: vec!["src".into()],
            ..Selection::default()
        };
        assert_ne!(settled(dir.path(), &whole), settled(dir.path(), &narrower));
    }

    #[test]
    fn any_write_changes_it_even_with_the_same_content() {
        let dir = context();
        let whole = Selection::default();
        let before = settled(dir.path(), &whole);
        // Same bytes, same size: only the change time tells.
        fs::write(dir.path().join("src/a/one.rs"), "one").unwrap();
        assert_ne!(settled(dir.path(), &whole), before);
        let before = settled(dir.path(), &whole);
        fs::write(dir.path().join("src/b/new.rs"), "").unwrap();
        assert_ne!(settled(dir.path(), &whole), before);
        let before = settled(dir.path(), &whole);
        fs::remove_file(dir.path().join("docs/guide.md")).unwrap();
        assert_ne!(settled(dir.path(), &whole), before);
    }

    #[test]
    fn ignored_and_excluded_entries_do_not_count() {
        let dir = context();
        let selection = Selection {
            excludes: vec!["build".into(), "**/*.md".into()],
            extra_excludes: vec!["b".into()],
            include: vec![],
            ..Selection::default()
        };
        let before = settled(dir.path(), &selection);
        fs::write(dir.path().join("build/out.o"), "relinked").unwrap();
        fs::write(dir.path().join("docs/guide.md"), "edited").unwrap();
        fs::write(dir.path().join("build/more.o"), "").unwrap();
        assert_eq!(settled(dir.path(), &selection), before);
        fs::write(dir.path().join("src/a/one.rs"), "edited").unwrap();
        assert_ne!(settled(dir.path(), &selection), before);
    }

    #[test]
    fn an_entry_changed_a_moment_ago_is_not_trusted() {
        let dir = context();
        assert_eq!(
            stat_fingerprint(dir.path(), &Selection::default()).unwrap(),
            None
        );
    }

    #[test]
    fn a_checksum_carries_the_fingerprint_of_what_it_walked() {
        let dir = context();
        std::thread::sleep(RACY_WINDOW + Duration::from_millis(100));
        let store_dir = tempfile::tempdir().unwrap();
        let store = kiln_store::Store::open(store_dir.path()).unwrap();
        let whole = Selection::default();
        let sum = super::super::checksum(&store, dir.path(), &whole).unwrap();
        let now = stat_fingerprint(dir.path(), &whole).unwrap();
        assert!(now.is_some());
        assert_eq!(sum.stat_fingerprint, now);
    }
}
