//! The build cache around the engine: each op gets a key from its definition, the keys of
//! its inputs and the checksums of the context files it reads; a key with a live record
//! is answered without running anything, and a miss says what differs from the nearest
//! earlier record of the same step.

mod explain;
mod remote;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex};

use kiln_graph::{FileAction, MountKind, Node, NodeId, Op};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use super::{Engine, EngineError, Output};
use crate::Executor;
use crate::checksum::{Selection, checksum};
use crate::remote_cache::{CacheImport, ExportItem};

/// At most this many context files are remembered per record to name a changed file;
/// beyond it a miss says only that the files read changed.
const MAX_EXPLAINED_FILES: usize = 2_000;

/// What the cache may answer and how steps are named.
#[derive(Debug, Clone, Default)]
pub struct CachePolicy {
    /// `--no-cache`: run everything (results are still recorded).
    pub disabled: bool,
    /// Nodes of `--no-cache-filter` stages.
    pub uncached: HashSet<NodeId>,
    /// A stable name per node (`Dockerfile#[build 2/5]`), for explanations.
    pub steps: HashMap<NodeId, String>,
}

/// An op's result with its cache key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keyed {
    pub output: Output,
    pub key: String,
    pub cached: bool,
    /// When the result was first made (ms since the epoch; 0 for sources): a cached
    /// rebuild reuses it so the image's timestamps, and so its digest, do not change.
    pub created_ms: i64,
}

/// Why a step ran.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Miss {
    pub node: NodeId,
    pub step: String,
    pub reason: String,
}

/// The inputs a key is made of; stored with the record so a later miss can compare.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct KeyInputs {
    pub op: serde_json::Value,
    pub inputs: Vec<String>,
    /// Checksums of what the op reads from local contexts, one per read.
    pub reads: Vec<String>,
    /// `path` → `kind mode digest` of the files read, when few enough to remember.
    #[serde(default)]
    pub files: BTreeMap<String, String>,
}

impl KeyInputs {
    fn key(&self) -> String {
        // The file list is derived from `reads`; it is stored for explanations only.
        let keyed =
            serde_json::json!({ "op": self.op, "inputs": self.inputs, "reads": self.reads });
        let bytes = serde_json::to_vec(&keyed).unwrap_or_default();
        format!("sha256:{}", hex::encode(Sha256::digest(&bytes)))
    }
}

pub struct CachedEngine<'a> {
    engine: &'a Engine,
    policy: CachePolicy,
    misses: Mutex<Vec<Miss>>,
    reads: Mutex<Vec<ContextRead>>,
    /// `--cache-from` sources, asked (in order) after the local cache.
    imports: Vec<Arc<CacheImport>>,
    /// Where finished steps go for `--cache-to`; `None` once closed.
    exports: Mutex<Option<Sender<ExportItem>>>,
}

/// One checksum taken of a local context: what was read and what it summed to. A build
/// whose every read still sums the same read the same files.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContextRead {
    pub root: std::path::PathBuf,
    pub selection: Selection,
    pub digest: String,
    /// Digest of the checksum's [stat plan](crate::checksum::StatPlan): while it holds,
    /// the read is unchanged without reading or walking it again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan: Option<String>,
    /// The plan itself, until the store keeps it beside the short cut.
    #[serde(skip)]
    pub plan_bytes: Option<std::sync::Arc<[u8]>>,
}

impl<'a> CachedEngine<'a> {
    pub fn new(engine: &'a Engine, policy: CachePolicy) -> Self {
        Self {
            engine,
            policy,
            misses: Mutex::new(Vec::new()),
            reads: Mutex::new(Vec::new()),
            imports: Vec::new(),
            exports: Mutex::new(None),
        }
    }

    /// Every context read so far.
    pub fn reads(&self) -> Vec<ContextRead> {
        self.reads.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Every miss so far, in the order the steps ran.
    pub fn misses(&self) -> Vec<Miss> {
        self.misses
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn key_inputs(&self, node: &Node, inputs: &[Keyed]) -> Result<KeyInputs, EngineError> {
        let mut op = serde_json::to_value(&node.op).unwrap_or_default();
        let mut key = KeyInputs {
            inputs: inputs.iter().map(|i| i.key.clone()).collect(),
            ..KeyInputs::default()
        };
        match &node.op {
            // A local source is identified by what is read from it, by its readers.
            Op::Local(local) => {
                op = serde_json::json!({ "kind": "local", "include": local.include, "exclude": local.exclude });
                key.inputs.clear();
            }
            Op::File(file) => {
                for action in &file.actions {
                    if let FileAction::Copy(copy) = action
                        && let Some(Output::Dir { path, excludes }) =
                            inputs.get(copy.input).map(|i| &i.output)
                    {
                        let selection = Selection {
                            include: copy.sources.clone(),
                            excludes: excludes.clone(),
                            extra_excludes: copy.exclude.clone(),
                            ignore_mode: copy.chmod.is_some(),
                            // Context files become root-owned or take --chown's owner.
                            ignore_owner: true,
                        };
                        self.read(&mut key, copy.input, path, &selection)?;
                    }
                }
            }
            Op::Exec(exec) => {
                for mount in &exec.mounts {
                    if let MountKind::Bind { input, source, .. } = &mount.kind
                        && let Some(Output::Dir { path, excludes }) =
                            inputs.get(*input).map(|i| &i.output)
                    {
                        let include = if source == "/" || source == "." {
                            vec![]
                        } else {
                            vec![source.clone()]
                        };
                        let selection = Selection {
                            include,
                            excludes: excludes.clone(),
                            extra_excludes: vec![],
                            ignore_mode: false,
                            ignore_owner: false,
                        };
                        self.read(&mut key, *input, path, &selection)?;
                    }
                }
            }
            _ => {}
        }
        key.op = op;
        Ok(key)
    }

    fn read(
        &self,
        key: &mut KeyInputs,
        input: usize,
        root: &std::path::Path,
        selection: &Selection,
    ) -> Result<(), EngineError> {
        let sum = checksum(self.engine.store(), root, selection)
            .map_err(|e| EngineError::Input(e.to_string()))?;
        key.reads.push(sum.digest.clone());
        self.reads
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(ContextRead {
                root: root.to_path_buf(),
                selection: selection.clone(),
                digest: sum.digest.clone(),
                plan: sum.stat_plan.as_ref().map(|p| p.digest.clone()),
                plan_bytes: sum.stat_plan.as_ref().map(|p| p.bytes.clone()),
            });
        if key.files.len() + sum.entries.len() <= MAX_EXPLAINED_FILES {
            for entry in &sum.entries {
                key.files.insert(
                    format!("{input}:{}", entry.path),
                    explain::describe_entry(entry, selection),
                );
            }
        }
        Ok(())
    }
}

/// Ops cheap enough, or keyed elsewhere, that they get no record of their own.
pub(super) fn recorded(op: &Op) -> bool {
    matches!(op, Op::Exec(_) | Op::File(_) | Op::Merge)
}

impl Executor for CachedEngine<'_> {
    type Output = Keyed;
    type Error = EngineError;

    fn execute(
        &self,
        id: NodeId,
        node: &Node,
        inputs: &[Keyed],
        log: &dyn Fn(&str),
    ) -> Result<Keyed, EngineError> {
        let key_inputs = self.key_inputs(node, inputs)?;
        let key = key_inputs.key();
        let plain =
            |inputs: &[Keyed]| -> Vec<Output> { inputs.iter().map(|i| i.output.clone()).collect() };
        if !recorded(&node.op) {
            let output = self.engine.execute(id, node, &plain(inputs), log)?;
            return Ok(Keyed {
                output,
                key,
                cached: false,
                created_ms: 0,
            });
        }
        let store = self.engine.store();
        let step = self.policy.steps.get(&id).cloned().unwrap_or_default();
        let usable = !self.policy.disabled && !self.policy.uncached.contains(&id);
        if usable && let Some(record) = store.cache_lookup(&key)? {
            let keyed = Keyed {
                output: Output::Fs(record.snapshot),
                key,
                cached: true,
                created_ms: record.created_ms,
            };
            self.queue_export(id, node, inputs, &keyed, &step, record.inputs);
            return Ok(keyed);
        }
        if usable && let Some((keyed, stored)) = self.remote_hit(id, node, inputs, &key, &step) {
            self.queue_export(id, node, inputs, &keyed, &step, stored);
            return Ok(keyed);
        }
        let reason = if usable {
            explain::reason(store, &step, &key, &key_inputs)
        } else {
            "cache disabled for this step (--no-cache / --no-cache-filter)".to_string()
        };
        log(&format!("cache miss: {reason}"));
        self.misses
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(Miss {
                node: id,
                step: step.clone(),
                reason,
            });
        let output = self.engine.execute(id, node, &plain(inputs), log)?;
        let stored = serde_json::to_string(&key_inputs).unwrap_or_default();
        store.cache_insert(&key, output.snapshot(), &step, &stored)?;
        let keyed = Keyed {
            output,
            key,
            cached: false,
            created_ms: kiln_store::fsutil::now_ms(),
        };
        self.queue_export(id, node, inputs, &keyed, &step, stored);
        Ok(keyed)
    }

    fn is_cached(output: &Keyed) -> bool {
        output.cached
    }
}
