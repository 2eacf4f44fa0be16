//! A build context and a rootfs in a temporary directory, and COPY/ADD actions as the
//! Dockerfile frontend emits them, for the file-operation tests.
#![allow(dead_code)]

use std::fs;
use std::path::PathBuf;

use kiln_graph::{CopyAction, FileAction};
use kiln_worker::fileop::{FileOpError, InputRoot, apply};

/// A COPY (or, with `unpack`, an ADD) of `sources` to `dest`.
pub fn copy_action(sources: &[&str], dest: &str, unpack: bool) -> CopyAction {
    CopyAction {
        input: 0,
        sources: sources.iter().map(|s| s.to_string()).collect(),
        dest: dest.to_string(),
        owner: None,
        chmod: None,
        exclude: Vec::new(),
        parents: false,
        follow_symlinks: true,
        unpack,
        create_dest_path: true,
        allow_wildcard: true,
        allow_empty_wildcard: false,
    }
}

pub struct Fixture {
    _dir: tempfile::TempDir,
    pub context: PathBuf,
    pub rootfs: PathBuf,
    /// `.dockerignore` patterns of the context.
    pub ignore: Vec<String>,
}

impl Fixture {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let context = dir.path().join("context");
        let rootfs = dir.path().join("rootfs");
        fs::create_dir_all(&context).unwrap();
        fs::create_dir_all(rootfs.join("etc")).unwrap();
        Fixture {
            _dir: dir,
            context,
            rootfs,
            ignore: Vec::new(),
        }
    }

    /// Writes a context file.
    pub fn file(&self, rel: &str, content: &str) {
        let path = self.context.join(rel);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, content).unwrap();
    }

    pub fn apply(&self, action: FileAction) -> Result<(), FileOpError> {
        let inputs = [InputRoot {
            path: self.context.clone(),
            excludes: self.ignore.clone(),
        }];
        apply(&self.rootfs, &action, &inputs)
    }

    pub fn run(&self, action: CopyAction) -> Result<(), FileOpError> {
        self.apply(FileAction::Copy(action))
    }

    /// Where `image_path` is on the host.
    pub fn host(&self, image_path: &str) -> PathBuf {
        self.rootfs.join(image_path.trim_start_matches('/'))
    }

    pub fn read(&self, image_path: &str) -> String {
        fs::read_to_string(self.host(image_path)).unwrap_or_else(|e| panic!("{image_path}: {e}"))
    }

    pub fn exists(&self, image_path: &str) -> bool {
        fs::symlink_metadata(self.host(image_path)).is_ok()
    }

    pub fn meta(&self, image_path: &str) -> fs::Metadata {
        fs::symlink_metadata(self.host(image_path)).unwrap()
    }
}
