//! File ops (COPY, ADD, WORKDIR, heredoc files) and merges, plus the helpers every op
//! uses to see its inputs as directories.

use std::os::unix::fs::{PermissionsExt, chown};
use std::path::{Path, PathBuf};

use kiln_graph::{FileAction, FileOp};
use kiln_worker::ActiveMount;
use kiln_worker::fileop::{self, InputRoot};

use super::{Engine, EngineError, Output, io_error};

/// Something that must stay alive while an op reads its inputs: a mounted snapshot or a
/// scratch directory. Dropping it unmounts or removes it.
#[expect(
    dead_code,
    reason = "held only so that dropping it unmounts or removes"
)]
pub(crate) enum Held {
    Mount(ActiveMount),
    Dir(ScratchDir),
}

/// A directory under the store's tmp dir, removed on drop.
pub(crate) struct ScratchDir {
    pub path: PathBuf,
}

impl ScratchDir {
    pub fn create(engine: &Engine, prefix: &str) -> Result<Self, EngineError> {
        let name = format!("{prefix}-{}", kiln_store::fsutil::random_hex(8));
        let path = engine.store().tmp_dir().join(name);
        std::fs::create_dir_all(&path).map_err(io_error(format!("create {}", path.display())))?;
        Ok(Self { path })
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// A directory showing `output`'s filesystem, kept alive by `held`.
pub(crate) fn input_root(
    engine: &Engine,
    output: Option<&Output>,
    held: &mut Vec<Held>,
) -> Result<InputRoot, EngineError> {
    match output {
        Some(Output::Dir { path, excludes }) => Ok(InputRoot {
            path: path.clone(),
            excludes: excludes.clone(),
        }),
        Some(Output::Fs(Some(id))) => {
            let active = engine.snapshotter().prepare(Some(id))?;
            let path = active.rootfs().to_path_buf();
            held.push(Held::Mount(active));
            Ok(InputRoot {
                path,
                excludes: vec![],
            })
        }
        Some(lazy @ Output::Layers(_)) => {
            let unpacked = engine.materialize(lazy, "")?;
            input_root(engine, Some(&unpacked), held)
        }
        Some(Output::Fs(None)) | None => {
            let dir = ScratchDir::create(engine, "empty")?;
            let path = dir.path.clone();
            held.push(Held::Dir(dir));
            Ok(InputRoot {
                path,
                excludes: vec![],
            })
        }
    }
}

pub(crate) fn apply(
    engine: &Engine,
    file: &FileOp,
    inputs: &[Output],
    label: &str,
) -> Result<Output, EngineError> {
    let parent = match inputs.first() {
        Some(Output::Fs(id)) => id.clone(),
        Some(Output::Dir { .. }) => {
            return Err(EngineError::Input(
                "a file op cannot change a local context".into(),
            ));
        }
        Some(Output::Layers(_)) => {
            return Err(EngineError::Input(
                "a file op's input was not unpacked".into(),
            ));
        }
        None => None,
    };
    let mut held = Vec::new();
    let mut roots = Vec::with_capacity(inputs.len());
    for (index, input) in inputs.iter().enumerate() {
        if index == 0 && matches!(input, Output::Fs(_)) {
            // Input 0 is the filesystem being changed; it is never read as a source root.
            roots.push(InputRoot {
                path: PathBuf::new(),
                excludes: vec![],
            });
            continue;
        }
        roots.push(input_root(engine, Some(input), &mut held)?);
    }
    let active = engine.snapshotter().prepare(parent.as_deref())?;
    for action in &file.actions {
        let action = owned_by_root_from_context(action, inputs);
        if let Err(error) = fileop::apply(active.rootfs(), &action, &roots) {
            engine.snapshotter().abort(active)?;
            return Err(error.into());
        }
    }
    let record = engine.snapshotter().commit(active, label)?;
    drop(held);
    Ok(Output::Fs(Some(record.id)))
}

/// Files copied from a local context belong to root unless `--chown` says otherwise: a
/// checkout's uid must not leak into the image (BuildKit does the same).
fn owned_by_root_from_context(action: &FileAction, inputs: &[Output]) -> FileAction {
    match action {
        FileAction::Copy(copy)
            if copy.owner.is_none()
                && matches!(inputs.get(copy.input), Some(Output::Dir { .. })) =>
        {
            let mut copy = copy.clone();
            copy.owner = Some(kiln_graph::Ownership {
                user: "0".into(),
                group: Some("0".into()),
            });
            FileAction::Copy(copy)
        }
        other => other.clone(),
    }
}

/// `COPY --link`: input 1's filesystem (built on scratch, so it is all one diff) stacked
/// as a new snapshot on input 0.
pub(crate) fn merge(
    engine: &Engine,
    inputs: &[Output],
    label: &str,
) -> Result<Output, EngineError> {
    let mut parent = inputs
        .first()
        .and_then(Output::snapshot)
        .map(str::to_string);
    for layer in inputs.iter().skip(1) {
        let Some(id) = layer.snapshot() else { continue };
        let source = engine.snapshotter().fs_dir(id)?;
        let record = engine
            .snapshotter()
            .import_dir(parent.as_deref(), &source, label)?;
        parent = Some(record.id);
    }
    Ok(Output::Fs(parent))
}

/// Creates `path` for a cache mount with the requested mode and owner when it is new.
pub(crate) fn ensure_dir(path: &Path, mode: u32, uid: u32, gid: u32) -> Result<bool, EngineError> {
    if path.is_dir() {
        return Ok(false);
    }
    std::fs::create_dir_all(path).map_err(io_error(format!("create {}", path.display())))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(io_error(format!("chmod {}", path.display())))?;
    chown(path, Some(uid), Some(gid)).map_err(io_error(format!("chown {}", path.display())))?;
    Ok(true)
}

/// Copies `source` (a path inside `root`) into `dest` honouring `root.excludes`.
pub(crate) fn copy_filtered(
    root: &InputRoot,
    source: &str,
    dest: &Path,
) -> Result<(), EngineError> {
    let action = FileAction::Copy(kiln_graph::CopyAction {
        input: 0,
        sources: vec![source.to_string()],
        dest: "/".to_string(),
        owner: None,
        chmod: None,
        exclude: vec![],
        parents: false,
        follow_symlinks: true,
        unpack: false,
        create_dest_path: true,
        allow_wildcard: false,
        allow_empty_wildcard: true,
    });
    fileop::apply(dest, &action, std::slice::from_ref(root))?;
    Ok(())
}
