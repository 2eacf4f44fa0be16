//! Several threads and several processes writing one store at once must neither fail nor
//! corrupt it, and a blob is never visible at its final path before it is complete.

use std::io::{self, Read};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use kiln_store::{Digest, Store};

const CHILD_ROOT: &str = "KILN_STORE_TEST_CHILD_ROOT";
const CHILD_NAME: &str = "KILN_STORE_TEST_CHILD_NAME";
const CHILD_MODE: &str = "KILN_STORE_TEST_CHILD_MODE";

/// Writes one worker's share: tags, a snapshot chain and blobs (one shared by all workers,
/// so identical content is raced too).
fn write_batch(store: &Store, who: &str, n: usize) {
    let mut parent: Option<String> = None;
    for i in 0..n {
        let own = store
            .put_blob_bytes(format!("{who}-{i}").as_bytes())
            .unwrap();
        let shared = store
            .put_blob_bytes(format!("shared-{i}").as_bytes())
            .unwrap();
        assert_eq!(shared, Digest::of_bytes(format!("shared-{i}").as_bytes()));
        store.tag(&format!("{who}:{i}"), &own).unwrap();
        let id = format!("{who}-{i}");
        store
            .add_snapshot(&id, parent.as_deref(), i as u64, "test")
            .unwrap();
        store.touch_snapshots(&[&id]).unwrap();
        assert!(store.resolve(&format!("{who}:{i}")).unwrap().is_some());
        parent = Some(id);
    }
}

fn check_store(root: &Path, workers: &[String], n: usize) {
    let store = Store::open(root).unwrap();
    let conn = rusqlite::Connection::open(root.join("meta.db")).unwrap();
    let integrity: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(integrity, "ok");
    assert_eq!(store.list_images().unwrap().len(), workers.len() * n);
    assert_eq!(store.list_snapshots().unwrap().len(), workers.len() * n);
    for w in workers {
        let chain = store.snapshot_chain(&format!("{w}-{}", n - 1)).unwrap();
        assert_eq!(chain.len(), n);
        for i in 0..n {
            let d = store
                .resolve(&format!("{w}:{i}"))
                .unwrap()
                .unwrap()
                .manifest;
            store.verify_blob(&d).unwrap();
        }
    }
    for i in 0..n {
        store
            .verify_blob(&Digest::of_bytes(format!("shared-{i}").as_bytes()))
            .unwrap();
    }
    let leftovers: Vec<_> = std::fs::read_dir(store.tmp_dir()).unwrap().collect();
    assert!(leftovers.is_empty(), "temp files left: {leftovers:?}");
}

#[test]
fn threads_sharing_one_store() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(dir.path()).unwrap());
    let workers: Vec<String> = (0..6).map(|i| format!("t{i}")).collect();
    let handles: Vec<_> = workers
        .iter()
        .cloned()
        .map(|w| {
            let store = Arc::clone(&store);
            std::thread::spawn(move || write_batch(&store, &w, 40))
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    check_store(dir.path(), &workers, 40);
}

#[test]
fn threads_each_opening_the_store_fresh() {
    // Every thread opens its own connection on a root that does not exist yet, so the
    // first-open (schema creation, WAL switch) races as well.
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("new-store");
    let workers: Vec<String> = (0..6).map(|i| format!("c{i}")).collect();
    let handles: Vec<_> = workers
        .iter()
        .cloned()
        .map(|w| {
            let root = root.clone();
            std::thread::spawn(move || write_batch(&Store::open(&root).unwrap(), &w, 40))
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    check_store(&root, &workers, 40);
}

/// Child process entry point; a no-op unless spawned by a test below.
#[test]
fn child_process_entry() {
    let (Ok(root), Ok(name), Ok(mode)) = (
        std::env::var(CHILD_ROOT),
        std::env::var(CHILD_NAME),
        std::env::var(CHILD_MODE),
    ) else {
        return;
    };
    let store = Store::open(&root).unwrap();
    match mode.as_str() {
        "batch" => write_batch(&store, &name, 60),
        "endless-blob" => {
            // Never finishes: the parent kills us mid-write.
            let _ = store.put_blob(SlowZeros {
                left: u64::MAX,
                delay: Duration::from_millis(1),
            });
        }
        other => panic!("unknown child mode {other}"),
    }
}

fn spawn_child(root: &Path, name: &str, mode: &str) -> std::process::Child {
    Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_process_entry",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ROOT, root)
        .env(CHILD_NAME, name)
        .env(CHILD_MODE, mode)
        .stdout(Stdio::null())
        .spawn()
        .unwrap()
}

#[test]
fn several_processes_writing_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("shared");
    let workers: Vec<String> = (0..4).map(|i| format!("p{i}")).collect();
    let children: Vec<_> = workers
        .iter()
        .map(|w| spawn_child(&root, w, "batch"))
        .collect();
    for mut c in children {
        assert!(c.wait().unwrap().success(), "a writer process failed");
    }
    check_store(&root, &workers, 60);
}

#[test]
fn killed_writer_leaves_no_blob_at_final_path() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let mut child = spawn_child(dir.path(), "k", "endless-blob");
    // Wait until the writer has started its temp file, then kill it.
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::fs::read_dir(store.tmp_dir()).unwrap().next().is_none() {
        assert!(Instant::now() < deadline, "writer never started");
        std::thread::sleep(Duration::from_millis(10));
    }
    std::thread::sleep(Duration::from_millis(100));
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(std::fs::read_dir(store.blobs_dir()).unwrap().count(), 0);
    assert_eq!(store.clean_tmp_blobs(Duration::ZERO).unwrap(), 1);
    assert_eq!(std::fs::read_dir(store.tmp_dir()).unwrap().count(), 0);
}

#[test]
fn readers_never_see_a_partial_blob() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(dir.path()).unwrap());
    let size: u64 = 8 * 1024 * 1024;
    let expected = {
        let mut all = Vec::new();
        SlowZeros {
            left: size,
            delay: Duration::ZERO,
        }
        .read_to_end(&mut all)
        .unwrap();
        Digest::of_bytes(&all)
    };
    let done = Arc::new(AtomicBool::new(false));
    let watcher = {
        let (store, done, expected) = (Arc::clone(&store), Arc::clone(&done), expected.clone());
        std::thread::spawn(move || {
            let mut seen_partial = false;
            while !done.load(Ordering::SeqCst) {
                if let Ok(m) = std::fs::metadata(store.blob_path(&expected)) {
                    seen_partial |= m.len() != size;
                }
                std::thread::yield_now();
            }
            seen_partial
        })
    };
    let got = store
        .put_blob(SlowZeros {
            left: size,
            delay: Duration::from_micros(50),
        })
        .unwrap();
    done.store(true, Ordering::SeqCst);
    assert_eq!(got, expected);
    assert!(
        !watcher.join().unwrap(),
        "a partial blob was visible at its final path"
    );
}

/// Yields `left` bytes in 64 KiB chunks, pausing between chunks.
struct SlowZeros {
    left: u64,
    delay: Duration,
}

impl Read for SlowZeros {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = buf
            .len()
            .min(64 * 1024)
            .min(usize::try_from(self.left).unwrap_or(usize::MAX));
        if !self.delay.is_zero() {
            std::thread::sleep(self.delay);
        }
        buf[..n].fill(0);
        self.left -= n as u64;
        Ok(n)
    }
}
