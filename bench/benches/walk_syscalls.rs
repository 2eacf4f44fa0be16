//! Which syscall strategy lists and `lstat`s a build context fastest: the walk behind
//! context checksums (`kiln-solver`'s `checksum::select`), measured on a
//! generated tree of 200 directories x 100 files, warm cache, best of several runs.
//!
//! - `std`: `fs::read_dir` + `DirEntry::metadata` (what the walk uses).
//! - `raw`: `getdents64` on an `O_DIRECTORY` fd, then `statx(dirfd, name,
//!   AT_SYMLINK_NOFOLLOW | AT_STATX_DONT_SYNC, minimal mask)`, buffers reused, no path
//!   built per entry.
//! - `uring`: the same listing, the `statx` calls submitted as one io_uring batch per
//!   directory (`IORING_OP_STATX`).
//!
//! Each at 1, 2, 4 and 8 threads taking top-level directories from a shared counter.
//! Every strategy's entries are compared with `std`'s, so a faster one is also a correct
//! one. Run: `cargo bench -p kiln-bench --bench walk_syscalls`.

use std::ffi::{CStr, CString, OsStr};
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

const DIRS: usize = 200;
const FILES_PER_DIR: usize = 100;
const RUNS: usize = 15;
const THREADS: [usize; 4] = [1, 2, 4, 8];

/// What the fingerprint keeps of one entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Stat {
    mode: u32,
    uid: u32,
    gid: u32,
    rdev: u64,
    dev: u64,
    ino: u64,
    size: u64,
    mtime_ns: i64,
    ctime_ns: i64,
}

type Entries = Vec<(Vec<u8>, Stat)>;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Strategy {
    Std,
    Raw,
    Uring,
}

impl Strategy {
    fn name(self) -> &'static str {
        match self {
            Strategy::Std => "std read_dir + metadata",
            Strategy::Raw => "getdents64 + statx",
            Strategy::Uring => "io_uring IORING_OP_STATX",
        }
    }
}

fn main() -> ExitCode {
    let root = std::env::temp_dir().join(format!("kiln-walk-bench-{}", std::process::id()));
    let outcome = make_tree(&root)
        .map_err(|e| format!("making the tree: {e}"))
        .and_then(|()| measure(&root));
    let _ = fs::remove_dir_all(&root);
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("walk_syscalls: {e}");
            ExitCode::FAILURE
        }
    }
}

fn make_tree(root: &Path) -> std::io::Result<()> {
    for d in 0..DIRS {
        let dir = root.join(format!("d{d}"));
        fs::create_dir_all(&dir)?;
        for f in 0..FILES_PER_DIR {
            fs::write(
                dir.join(format!("f{f}.bin")),
                vec![b'x'; (d * 100 + f) % 97],
            )?;
        }
    }
    Ok(())
}

fn measure(root: &Path) -> Result<(), String> {
    let reference = walk(root, Strategy::Std, 1).map_err(|e| format!("std walk: {e}"))?;
    println!(
        "{} entries below {}; best of {RUNS} runs (wall, and user+sys CPU of that run)",
        reference.len(),
        root.display()
    );
    println!("| strategy | threads | best wall | CPU | median wall |");
    println!("|---|---|---|---|---|");
    for strategy in [Strategy::Std, Strategy::Raw, Strategy::Uring] {
        for threads in THREADS {
            let mut walls = Vec::with_capacity(RUNS);
            let mut best = (f64::MAX, 0.0);
            for _ in 0..RUNS {
                let cpu_before = cpu_ms();
                let started = Instant::now();
                let found = match walk(root, strategy, threads) {
                    Ok(found) => found,
                    Err(e) => {
                        println!("| {} | {threads} | unavailable: {e} | | |", strategy.name());
                        break;
                    }
                };
                let wall = started.elapsed().as_secs_f64() * 1e3;
                let cpu = cpu_ms() - cpu_before;
                if found != reference {
                    return Err(format!("{} found different entries", strategy.name()));
                }
                walls.push(wall);
                if wall < best.0 {
                    best = (wall, cpu);
                }
            }
            if walls.is_empty() {
                continue;
            }
            walls.sort_by(f64::total_cmp);
            println!(
                "| {} | {threads} | {:.1} ms | {:.1} ms | {:.1} ms |",
                strategy.name(),
                best.0,
                best.1,
                walls[walls.len() / 2]
            );
        }
    }
    kernel_floor(root).map_err(|e| format!("kernel floor: {e}"))
}

/// The kernel's share on one thread, apart: listing every directory (open, `getdents64`,
/// close), and `statx` on every name listed beforehand, with nothing else in the loop.
fn kernel_floor(root: &Path) -> std::io::Result<()> {
    let mut dirs: Vec<PathBuf> = fs::read_dir(root)?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    dirs.sort();
    let mut walker = Walker::new(Strategy::Raw)?;
    let mut list_best = f64::MAX;
    for _ in 0..RUNS {
        let started = Instant::now();
        for dir in &dirs {
            walker.list(&DirFd::open(dir)?)?;
        }
        list_best = list_best.min(started.elapsed().as_secs_f64() * 1e3);
    }
    let mut listed = Vec::with_capacity(dirs.len());
    for dir in &dirs {
        let fd = DirFd::open(dir)?;
        walker.list(&fd)?;
        listed.push((fd, walker.names.clone(), walker.name_starts.clone()));
    }
    let mut stat_best = f64::MAX;
    for _ in 0..RUNS {
        let started = Instant::now();
        for (fd, names, starts) in &listed {
            walker.names.clone_from(names);
            walker.name_starts.clone_from(starts);
            walker.stat_each(fd)?;
        }
        stat_best = stat_best.min(started.elapsed().as_secs_f64() * 1e3);
    }
    let count: usize = listed.iter().map(|(_, _, starts)| starts.len()).sum();
    println!(
        "kernel floor, 1 thread: listing {} directories {list_best:.1} ms; statx of {count} \
         listed names {stat_best:.1} ms ({:.2} us each)",
        dirs.len(),
        stat_best * 1e3 / count as f64
    );
    Ok(())
}

/// User + system CPU time of this process (all threads, io_uring workers included).
fn cpu_ms() -> f64 {
    // SAFETY: getrusage only writes the struct it is given, which is plain data.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        usage
    };
    let ms = |t: libc::timeval| t.tv_sec as f64 * 1e3 + t.tv_usec as f64 / 1e3;
    ms(usage.ru_utime) + ms(usage.ru_stime)
}

/// Every entry below `root` in walk order (a directory before its contents, siblings by
/// name); the top-level directories are shared out over `threads` threads.
fn walk(root: &Path, strategy: Strategy, threads: usize) -> std::io::Result<Entries> {
    let mut top: Vec<PathBuf> = fs::read_dir(root)?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    top.sort();
    let next = AtomicUsize::new(0);
    let mut parts = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| -> std::io::Result<Vec<(usize, Entries)>> {
                    let mut walker = Walker::new(strategy)?;
                    let mut mine = Vec::new();
                    loop {
                        let at = next.fetch_add(1, Ordering::Relaxed);
                        let Some(dir) = top.get(at) else {
                            return Ok(mine);
                        };
                        let mut out =
                            vec![(name_of(dir).to_vec(), stat_std(&fs::symlink_metadata(dir)?))];
                        walker.walk_dir(dir, name_of(dir), &mut out)?;
                        mine.push((at, out));
                    }
                })
            })
            .collect();
        let mut all = Vec::new();
        for worker in workers {
            all.extend(worker.join().expect("walker panicked")?);
        }
        Ok::<_, std::io::Error>(all)
    })?;
    parts.sort_by_key(|(at, _)| *at);
    Ok(parts.into_iter().flat_map(|(_, part)| part).collect())
}

fn name_of(path: &Path) -> &[u8] {
    path.file_name().map_or(b"", |n| n.as_bytes())
}

fn join_rel(parent: &[u8], name: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(parent.len() + 1 + name.len());
    out.extend_from_slice(parent);
    out.push(b'/');
    out.extend_from_slice(name);
    out
}

fn stat_std(meta: &fs::Metadata) -> Stat {
    Stat {
        mode: meta.mode(),
        uid: meta.uid(),
        gid: meta.gid(),
        rdev: meta.rdev(),
        dev: meta.dev(),
        ino: meta.ino(),
        size: meta.size(),
        mtime_ns: meta.mtime() * 1_000_000_000 + meta.mtime_nsec(),
        ctime_ns: meta.ctime() * 1_000_000_000 + meta.ctime_nsec(),
    }
}

const STATX_MASK: u32 = libc::STATX_TYPE
    | libc::STATX_MODE
    | libc::STATX_UID
    | libc::STATX_GID
    | libc::STATX_INO
    | libc::STATX_SIZE
    | libc::STATX_MTIME
    | libc::STATX_CTIME;
const STATX_FLAGS: i32 = libc::AT_SYMLINK_NOFOLLOW | libc::AT_STATX_DONT_SYNC;

fn stat_statx(x: &libc::statx) -> Stat {
    let ns = |t: libc::statx_timestamp| t.tv_sec * 1_000_000_000 + i64::from(t.tv_nsec);
    Stat {
        mode: u32::from(x.stx_mode),
        uid: x.stx_uid,
        gid: x.stx_gid,
        rdev: libc::makedev(x.stx_rdev_major, x.stx_rdev_minor),
        dev: libc::makedev(x.stx_dev_major, x.stx_dev_minor),
        ino: x.stx_ino,
        size: x.stx_size,
        mtime_ns: ns(x.stx_mtime),
        ctime_ns: ns(x.stx_ctime),
    }
}

/// One thread's reusable state: the listing buffers and, for `uring`, its ring.
struct Walker {
    strategy: Strategy,
    dirents: Vec<u8>,
    /// NUL-terminated names of the directory being walked, back to back.
    names: Vec<u8>,
    name_starts: Vec<usize>,
    stats: Vec<libc::statx>,
    ring: Option<io_uring::IoUring>,
}

impl Walker {
    fn new(strategy: Strategy) -> std::io::Result<Self> {
        let ring = match strategy {
            Strategy::Uring => Some(io_uring::IoUring::new(256)?),
            _ => None,
        };
        Ok(Self {
            strategy,
            dirents: vec![0; 32 * 1024],
            names: Vec::new(),
            name_starts: Vec::new(),
            stats: Vec::new(),
            ring,
        })
    }

    fn walk_dir(&mut self, dir: &Path, rel: &[u8], out: &mut Entries) -> std::io::Result<()> {
        let children = match self.strategy {
            Strategy::Std => {
                let mut children = Vec::new();
                for entry in fs::read_dir(dir)? {
                    let entry = entry?;
                    let meta = entry.metadata()?;
                    children.push((join_rel(rel, entry.file_name().as_bytes()), stat_std(&meta)));
                }
                children
            }
            Strategy::Raw | Strategy::Uring => {
                let fd = DirFd::open(dir)?;
                self.list(&fd)?;
                if self.strategy == Strategy::Raw {
                    self.stat_each(&fd)?;
                } else {
                    self.stat_batched(&fd)?;
                }
                self.name_starts
                    .iter()
                    .zip(&self.stats)
                    .map(|(&start, x)| {
                        (join_rel(rel, self.name_at(start).to_bytes()), stat_statx(x))
                    })
                    .collect()
            }
        };
        let mut children = children;
        children.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        let name_at = rel.len() + 1;
        for (child_rel, stat) in children {
            let is_dir = stat.mode & 0o170000 == 0o040000;
            out.push((child_rel.clone(), stat));
            if is_dir {
                let path = dir.join(OsStr::from_bytes(&child_rel[name_at..]));
                self.walk_dir(&path, &child_rel, out)?;
            }
        }
        Ok(())
    }

    fn name_at(&self, start: usize) -> &CStr {
        CStr::from_bytes_until_nul(&self.names[start..]).expect("names are NUL-terminated")
    }

    /// Reads the whole listing of `fd` into `names` (without `.` and `..`).
    fn list(&mut self, fd: &DirFd) -> std::io::Result<()> {
        self.names.clear();
        self.name_starts.clear();
        loop {
            // SAFETY: the kernel writes at most `dirents.len()` bytes into the buffer.
            let got = unsafe {
                libc::syscall(
                    libc::SYS_getdents64,
                    fd.0,
                    self.dirents.as_mut_ptr(),
                    self.dirents.len(),
                )
            };
            if got < 0 {
                return Err(std::io::Error::last_os_error());
            }
            if got == 0 {
                return Ok(());
            }
            // linux_dirent64: u64 d_ino, i64 d_off, u16 d_reclen, u8 d_type, name.
            let mut at = 0;
            while at < got as usize {
                let record = &self.dirents[at..];
                let reclen = usize::from(u16::from_ne_bytes([record[16], record[17]]));
                let name = CStr::from_bytes_until_nul(&record[19..reclen])
                    .map_err(|_| std::io::Error::other("unterminated name in getdents64"))?;
                if name != c"." && name != c".." {
                    self.name_starts.push(self.names.len());
                    self.names.extend_from_slice(name.to_bytes_with_nul());
                }
                at += reclen;
            }
        }
    }

    fn stat_each(&mut self, fd: &DirFd) -> std::io::Result<()> {
        self.stats.clear();
        for &start in &self.name_starts {
            // SAFETY: statx writes only the plain-data struct it is given.
            let mut x: libc::statx = unsafe { std::mem::zeroed() };
            // SAFETY: the name is NUL-terminated and outlives the call.
            let rc = unsafe {
                libc::statx(
                    fd.0,
                    self.names[start..].as_ptr().cast(),
                    STATX_FLAGS,
                    STATX_MASK,
                    &mut x,
                )
            };
            if rc != 0 {
                return Err(std::io::Error::last_os_error());
            }
            self.stats.push(x);
        }
        Ok(())
    }

    fn stat_batched(&mut self, fd: &DirFd) -> std::io::Result<()> {
        use io_uring::{opcode, types};
        let ring = self.ring.as_mut().expect("uring walker has a ring");
        let count = self.name_starts.len();
        // SAFETY: all-zero is a valid statx value.
        self.stats.resize(count, unsafe { std::mem::zeroed() });
        self.stats.truncate(count);
        let batch = ring.params().sq_entries() as usize;
        let mut done = 0;
        while done < count {
            let end = (done + batch).min(count);
            for at in done..end {
                let sqe = opcode::Statx::new(
                    types::Fd(fd.0),
                    self.names[self.name_starts[at]..].as_ptr().cast(),
                    (&raw mut self.stats[at]).cast(),
                )
                .flags(STATX_FLAGS)
                .mask(STATX_MASK)
                .build()
                .user_data(at as u64);
                // SAFETY: the name and the statx buffer stay put until every completion
                // of this batch is reaped below.
                unsafe { ring.submission().push(&sqe) }
                    .map_err(|_| std::io::Error::other("submission queue full"))?;
            }
            // Every completion is reaped before returning, even after a failure: until
            // then the kernel may still write into `stats`.
            let mut reaped = 0;
            let mut failed = None;
            while reaped < end - done {
                ring.submit_and_wait(1)?;
                for cqe in ring.completion() {
                    if cqe.result() < 0 {
                        failed.get_or_insert(std::io::Error::from_raw_os_error(-cqe.result()));
                    }
                    reaped += 1;
                }
            }
            if let Some(e) = failed {
                return Err(e);
            }
            done = end;
        }
        Ok(())
    }
}

/// An open `O_DIRECTORY` descriptor, closed on drop.
struct DirFd(i32);

impl DirFd {
    fn open(dir: &Path) -> std::io::Result<Self> {
        let path = CString::new(dir.as_os_str().as_bytes())?;
        // SAFETY: the path is NUL-terminated and outlives the call.
        let fd = unsafe {
            libc::open(
                path.as_ptr(),
                libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC | libc::O_NOFOLLOW,
            )
        };
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(Self(fd))
    }
}

impl Drop for DirFd {
    fn drop(&mut self) {
        // SAFETY: the descriptor is owned by this value and closed once.
        unsafe { libc::close(self.0) };
    }
}
