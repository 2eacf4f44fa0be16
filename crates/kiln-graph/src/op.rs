//! Op definitions and their content digests.

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

/// `sha256:<hex>` of an op's canonical encoding together with its inputs' digests.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct OpDigest(pub String);

impl OpDigest {
    /// Digest of `op` whose inputs have the digests `inputs`, in order.
    pub fn of(op: &Op, inputs: &[OpDigest]) -> Self {
        #[derive(Serialize)]
        struct Keyed<'a> {
            op: &'a Op,
            inputs: &'a [OpDigest],
        }
        // serde_json writes struct fields in declaration order and our maps are BTreeMaps,
        // so the encoding is canonical.
        let encoded = serde_json::to_vec(&Keyed { op, inputs }).unwrap_or_default();
        OpDigest(format!("sha256:{}", hex::encode(Sha256::digest(&encoded))))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for OpDigest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// One step of a build. Inputs are referred to by position in the node's input list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Op {
    /// The empty filesystem.
    Scratch,
    /// An image's root filesystem.
    Image(ImageSource),
    /// Files from a local directory (the build context or a named local context).
    Local(LocalSource),
    /// A command run in a container on top of input 0.
    Exec(ExecOp),
    /// File operations on top of input 0 (or on scratch when the op has no inputs).
    File(FileOp),
    /// Layers of every input stacked in order, as `COPY --link` produces.
    Merge,
    /// A file fetched over http(s) (`ADD URL`), verified against `checksum` when given.
    Http(HttpSource),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HttpSource {
    pub url: String,
    pub checksum: Option<String>,
    /// Name of the file in the result (the last path segment of the URL by default).
    pub filename: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageSource {
    /// The reference as written after expansion, normalized (`docker.io/library/x:latest`).
    pub reference: String,
    /// The manifest digest the reference resolved to; it, not the tag, identifies the op.
    pub digest: Option<String>,
    /// `os/arch[/variant]`.
    pub platform: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LocalSource {
    /// `context` for the main context, otherwise the named context's name.
    pub name: String,
    /// Paths (patterns) the build reads from it; empty means everything.
    pub include: Vec<String>,
    /// `.dockerignore` and `--exclude` patterns.
    pub exclude: Vec<String>,
    /// Digest of the content selected by include/exclude, filled in once the context has
    /// been checksummed; local sources are identified by content, not by path.
    pub content_digest: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum NetworkMode {
    #[default]
    Default,
    None,
    Host,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum SecurityMode {
    #[default]
    Sandbox,
    Insecure,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum CacheSharing {
    #[default]
    Shared,
    Private,
    Locked,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecOp {
    pub args: Vec<String>,
    /// `KEY=VALUE`, in order.
    pub env: Vec<String>,
    pub cwd: String,
    pub user: String,
    pub network: NetworkMode,
    pub security: SecurityMode,
    pub mounts: Vec<ExecMount>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecMount {
    pub target: String,
    pub kind: MountKind,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum MountKind {
    /// A path of an input, read-only unless `readwrite` (writes are then discarded).
    Bind {
        input: usize,
        source: String,
        readwrite: bool,
    },
    /// A persistent cache directory identified by `id`.
    Cache {
        id: String,
        sharing: CacheSharing,
        mode: u32,
        uid: u32,
        gid: u32,
        /// Input whose `source` path seeds an empty cache.
        seed: Option<(usize, String)>,
        readonly: bool,
    },
    Tmpfs {
        size: Option<u64>,
    },
    /// A secret's file or env var; only its id enters the op, never its value.
    Secret {
        id: String,
        env: Option<String>,
        required: bool,
        mode: u32,
        uid: u32,
        gid: u32,
    },
    Ssh {
        id: String,
        required: bool,
        mode: u32,
        uid: u32,
        gid: u32,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct FileOp {
    pub actions: Vec<FileAction>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum FileAction {
    Copy(CopyAction),
    Mkdir {
        path: String,
        mode: u32,
        parents: bool,
        owner: Option<Ownership>,
    },
    Mkfile {
        path: String,
        mode: u32,
        data: Vec<u8>,
        owner: Option<Ownership>,
    },
    Rm {
        path: String,
        allow_not_found: bool,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ownership {
    /// A name or a number; names resolve in the destination's /etc/passwd and /etc/group.
    pub user: String,
    pub group: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "form", content = "value", rename_all = "snake_case")]
pub enum ChmodSpec {
    Octal(u32),
    Symbolic(String),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CopyAction {
    /// Input the sources are read from.
    pub input: usize,
    pub sources: Vec<String>,
    pub dest: String,
    pub owner: Option<Ownership>,
    pub chmod: Option<ChmodSpec>,
    pub exclude: Vec<String>,
    pub parents: bool,
    pub follow_symlinks: bool,
    /// ADD: unpack local archives.
    pub unpack: bool,
    pub create_dest_path: bool,
    pub allow_wildcard: bool,
    pub allow_empty_wildcard: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exec(args: &[&str]) -> Op {
        Op::Exec(ExecOp {
            args: args.iter().map(|a| a.to_string()).collect(),
            env: vec!["PATH=/bin".into()],
            cwd: "/".into(),
            user: "root".into(),
            network: NetworkMode::Default,
            security: SecurityMode::Sandbox,
            mounts: vec![],
        })
    }

    #[test]
    fn digest_depends_on_definition_and_inputs() {
        let a = OpDigest::of(&exec(&["true"]), &[]);
        assert_eq!(a, OpDigest::of(&exec(&["true"]), &[]));
        assert_ne!(a, OpDigest::of(&exec(&["false"]), &[]));
        let parent = OpDigest::of(&Op::Scratch, &[]);
        assert_ne!(a, OpDigest::of(&exec(&["true"]), &[parent]));
        assert!(a.as_str().starts_with("sha256:") && a.as_str().len() == 71);
    }
}
