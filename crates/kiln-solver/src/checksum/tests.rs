use std::fs;
use std::os::unix::fs::symlink;

use super::*;

fn selection(include: &[&str]) -> Selection {
    Selection {
        include: include.iter().map(|s| s.to_string()).collect(),
        ..Selection::default()
    }
}

fn covered(root: &Path, selection: &Selection) -> Vec<String> {
    let store_dir = tempfile::tempdir().unwrap();
    let store = Store::open(store_dir.path()).unwrap();
    checksum(&store, root, selection)
        .unwrap()
        .entries
        .into_iter()
        .map(|e| e.path)
        .collect()
}

fn tree() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for file in [
        "a/b/one.txt",
        "a/b/two.md",
        "a/c/three.txt",
        "top.txt",
        "real/inside",
    ] {
        let path = dir.path().join(file);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, file).unwrap();
    }
    dir
}

#[test]
fn wildcards_match_one_level_each_and_cover_parents() {
    let dir = tree();
    assert_eq!(
        covered(dir.path(), &selection(&["a/*/*.txt"])),
        ["a", "a/b", "a/b/one.txt", "a/c", "a/c/three.txt"]
    );
    assert_eq!(covered(dir.path(), &selection(&["*.txt"])), ["top.txt"]);
}

#[test]
fn sources_are_cleaned_as_if_rooted() {
    let dir = tree();
    assert_eq!(
        covered(dir.path(), &selection(&["../../a/./b/../c"])),
        ["a", "a/c", "a/c/three.txt"]
    );
}

#[test]
fn exclude_is_relative_to_a_directory_source() {
    let dir = tree();
    let mut sel = selection(&["a"]);
    sel.extra_excludes = vec!["*/*.md".into()];
    assert_eq!(
        covered(dir.path(), &sel),
        ["a", "a/b", "a/b/one.txt", "a/c", "a/c/three.txt"]
    );
    // Relative to the source, "a/b" names nothing: nothing is left out.
    sel.extra_excludes = vec!["a/b".into()];
    assert_eq!(covered(dir.path(), &sel).len(), 6);
}

#[test]
fn symlinks_on_the_way_stay_inside_the_root_and_are_covered() {
    let dir = tree();
    symlink("/real", dir.path().join("abs")).unwrap();
    assert_eq!(
        covered(dir.path(), &selection(&["abs/inside"])),
        ["abs", "real", "real/inside"]
    );
    // Inside a copied directory, links are copied as links, not followed.
    fs::create_dir(dir.path().join("d")).unwrap();
    symlink("../real", dir.path().join("d/link")).unwrap();
    assert_eq!(covered(dir.path(), &selection(&["d"])), ["d", "d/link"]);
}

#[test]
fn ignored_directory_is_kept_only_for_what_is_brought_back() {
    let dir = tree();
    let mut sel = selection(&[]);
    sel.excludes = vec![
        "a".into(),
        "!a/b/one.txt".into(),
        "real".into(),
        "top.txt".into(),
    ];
    assert_eq!(covered(dir.path(), &sel), ["a", "a/b", "a/b/one.txt"]);
}

#[test]
fn a_symlinked_source_covers_its_target_even_when_that_is_ignored() {
    let dir = tree();
    symlink("real/inside", dir.path().join("link")).unwrap();
    let mut sel = selection(&["lin?"]);
    sel.excludes = vec!["real".into()];
    assert_eq!(covered(dir.path(), &sel), ["link", "real", "real/inside"]);
}
