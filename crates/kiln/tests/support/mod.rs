//! Shared helpers for the `kiln build` integration tests: a throw-away store with a busybox
//! base image, build contexts written from text, the kiln binary run and captured, and
//! readers for what the outputs wrote (local directories, OCI archives and layouts).

#![allow(dead_code)]

use std::fs;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

pub const KILN: &str = env!("CARGO_BIN_EXE_kiln");
pub const BUSYBOX: &str = "/bin/busybox";

/// Applets linked into the busybox base image.
const APPLETS: &[&str] = &[
    "sh", "ls", "cat", "echo", "mkdir", "rm", "touch", "sleep", "wc", "test", "sed", "id", "ln",
    "chmod", "stat", "true", "false", "grep", "head", "tail", "rev", "tr", "printf", "env",
];

fn have(tool: &str) -> bool {
    Command::new(tool)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Whether these tests can run here (root, runc, busybox and the interop tools); prints why
/// not when they cannot, and the test then returns without checking anything.
pub fn prerequisites() -> bool {
    let mut missing: Vec<String> = Vec::new();
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        missing.push("root".into());
    }
    if !Path::new(BUSYBOX).is_file() {
        missing.push(BUSYBOX.into());
    }
    for tool in ["runc", "skopeo", "umoci", "tar"] {
        if !have(tool) {
            missing.push(tool.into());
        }
    }
    if !missing.is_empty() {
        eprintln!("skipping: missing {missing:?}");
    }
    missing.is_empty()
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A scratch directory with a kiln store holding `busybox:latest`.
pub struct Env {
    pub dir: tempfile::TempDir,
    pub store: PathBuf,
}

impl Env {
    /// A fresh store with the busybox base imported, or `None` (after saying why) when the
    /// machine lacks what the tests need.
    pub fn new() -> Option<Env> {
        if !prerequisites() {
            return None;
        }
        let env = Env::bare();
        env.import_busybox(&env.store, "busybox:latest");
        Some(env)
    }

    /// A scratch directory and an empty store path.
    pub fn bare() -> Env {
        let dir = tempfile::Builder::new()
            .prefix("kiln-build-cli-")
            .tempdir()
            .unwrap();
        let store = dir.path().join("store");
        Env { dir, store }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// The busybox rootfs tar (built once per scratch dir).
    pub fn busybox_tar(&self) -> PathBuf {
        let tar = self.path("rootfs.tar");
        if tar.exists() {
            return tar;
        }
        let rootfs = self.path("rootfs");
        for d in ["bin", "etc", "tmp", "root", "home/app"] {
            fs::create_dir_all(rootfs.join(d)).unwrap();
        }
        fs::set_permissions(rootfs.join("tmp"), fs::Permissions::from_mode(0o1777)).unwrap();
        fs::copy(BUSYBOX, rootfs.join("bin/busybox")).unwrap();
        for applet in APPLETS {
            std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(applet)).unwrap();
        }
        fs::write(
            rootfs.join("etc/passwd"),
            "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n",
        )
        .unwrap();
        fs::write(
            rootfs.join("etc/group"),
            "root:x:0:\napp:x:1000:\nstaff:x:50:app\n",
        )
        .unwrap();
        run_ok(
            "tar",
            &[
                "--sort=name",
                "--mtime=@1600000000",
                "-C",
                rootfs.to_str().unwrap(),
                "-cf",
                tar.to_str().unwrap(),
                ".",
            ],
        );
        tar
    }

    pub fn import_busybox(&self, store: &Path, name: &str) {
        let tar = self.busybox_tar();
        let out = kiln_at(store, &["import", tar.to_str().unwrap(), name]);
        assert!(out.status.success(), "import failed: {}", text(&out.stderr));
    }

    /// Writes a build context directory `rel` from (path, contents) pairs.
    pub fn context(&self, rel: &str, files: &[(&str, &str)]) -> PathBuf {
        let dir = self.path(rel);
        fs::create_dir_all(&dir).unwrap();
        for (name, contents) in files {
            let path = dir.join(name);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, contents).unwrap();
        }
        dir
    }

    pub fn kiln(&self, args: &[&str]) -> Output {
        kiln_at(&self.store, args)
    }

    /// `kiln build --progress=plain ARGS`; asserts success and returns the progress (stderr).
    pub fn build_ok(&self, args: &[&str]) -> String {
        let out = self.build(args);
        assert!(
            out.status.success(),
            "kiln build {args:?} failed ({:?}):\n{}",
            out.status,
            text(&out.stderr)
        );
        format!("{}{}", text(&out.stdout), text(&out.stderr))
    }

    pub fn build(&self, args: &[&str]) -> Output {
        let mut full = vec!["build", "--progress=plain"];
        full.extend_from_slice(args);
        self.kiln(&full)
    }
}

pub fn kiln_at(store: &Path, args: &[&str]) -> Output {
    Command::new(KILN)
        .arg("--root")
        .arg(store)
        .args(args)
        .env_remove("KILN_ROOT")
        .env_remove("SOURCE_DATE_EPOCH")
        .output()
        .unwrap()
}

pub fn run_ok(program: &str, args: &[&str]) -> String {
    let out = Command::new(program).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{program} {args:?} failed: {}",
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// Reads a file of a `type=local` export (or any directory) as text.
pub fn read(dir: &Path, rel: &str) -> String {
    fs::read_to_string(dir.join(rel.trim_start_matches('/')))
        .unwrap_or_else(|e| panic!("reading {rel} under {}: {e}", dir.display()))
}

pub fn exists(dir: &Path, rel: &str) -> bool {
    fs::symlink_metadata(dir.join(rel.trim_start_matches('/'))).is_ok()
}

/// An OCI image layout on disk (unpacked from an archive when needed).
pub struct Layout {
    pub dir: PathBuf,
}

impl Layout {
    /// Unpacks an OCI (or docker) archive into `into` with tar.
    pub fn from_archive(archive: &Path, into: &Path) -> Layout {
        fs::create_dir_all(into).unwrap();
        run_ok(
            "tar",
            &[
                "-xf",
                archive.to_str().unwrap(),
                "-C",
                into.to_str().unwrap(),
            ],
        );
        Layout {
            dir: into.to_path_buf(),
        }
    }

    pub fn blob(&self, digest: &str) -> Vec<u8> {
        let (algo, hex) = digest.split_once(':').unwrap();
        fs::read(self.dir.join("blobs").join(algo).join(hex))
            .unwrap_or_else(|e| panic!("blob {digest}: {e}"))
    }

    pub fn json(&self, digest: &str) -> Value {
        serde_json::from_slice(&self.blob(digest)).unwrap()
    }

    /// The digest of the first image manifest, descending through nested indexes.
    pub fn manifest_digest(&self) -> String {
        let index: Value =
            serde_json::from_slice(&fs::read(self.dir.join("index.json")).unwrap()).unwrap();
        let mut desc = index["manifests"][0].clone();
        loop {
            let media = desc["mediaType"].as_str().unwrap_or_default();
            let digest = desc["digest"].as_str().unwrap().to_string();
            if media.contains("index") || media.contains("manifest.list") {
                desc = self.json(&digest)["manifests"][0].clone();
            } else {
                return digest;
            }
        }
    }

    pub fn manifest(&self) -> Value {
        self.json(&self.manifest_digest())
    }

    pub fn config_digest(&self) -> String {
        self.manifest()["config"]["digest"]
            .as_str()
            .unwrap()
            .to_string()
    }

    /// The whole image config JSON (`config`, `history`, `rootfs`, ...).
    pub fn config(&self) -> Value {
        self.json(&self.config_digest())
    }

    /// Every blob in the layout, decompressed when it is gzip or zstd.
    pub fn all_blobs_decompressed(&self) -> Vec<(String, Vec<u8>)> {
        let mut out = Vec::new();
        for entry in fs::read_dir(self.dir.join("blobs/sha256")).unwrap() {
            let entry = entry.unwrap();
            let raw = fs::read(entry.path()).unwrap();
            out.push((
                entry.file_name().to_string_lossy().into_owned(),
                decompress(&raw),
            ));
        }
        out
    }
}

/// Gunzips or un-zstds `raw` by its magic number; returns it unchanged otherwise.
pub fn decompress(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    if raw.starts_with(&[0x1f, 0x8b]) {
        flate2::read::GzDecoder::new(raw)
            .read_to_end(&mut out)
            .unwrap();
        out
    } else if raw.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        zstd::stream::read::Decoder::new(raw)
            .unwrap()
            .read_to_end(&mut out)
            .unwrap();
        out
    } else {
        raw.to_vec()
    }
}

pub fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// (path, entry type) of every entry of a layer blob, decompressed.
pub fn layer_entries(raw: &[u8]) -> Vec<(String, tar::EntryType)> {
    let data = decompress(raw);
    let mut archive = tar::Archive::new(data.as_slice());
    archive
        .entries()
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let path = e.path().unwrap().to_string_lossy().into_owned();
            (
                path.trim_start_matches("./")
                    .trim_end_matches('/')
                    .to_string(),
                e.header().entry_type(),
            )
        })
        .collect()
}

/// Asserts the store's `tmp/` holds nothing once kiln has exited.
pub fn assert_store_tmp_clean(store: &Path) {
    let tmp = store.join("tmp");
    if let Ok(entries) = fs::read_dir(&tmp) {
        let left: Vec<_> = entries.map(|e| e.unwrap().file_name()).collect();
        assert!(left.is_empty(), "left in {}: {left:?}", tmp.display());
    }
}

/// An OCI archive converted by skopeo to a layout and unpacked by umoci: the bundle dir
/// (its `rootfs/` is the image's filesystem as umoci applied the layers).
pub fn umoci_unpack(env: &Env, archive: &Path) -> PathBuf {
    let layout = env.path("layout");
    run_ok(
        "skopeo",
        &[
            "copy",
            &format!("oci-archive:{}", archive.display()),
            &format!("oci:{}:t", layout.display()),
        ],
    );
    let bundle = env.path("bundle");
    run_ok(
        "umoci",
        &[
            "unpack",
            "--image",
            &format!("{}:t", layout.display()),
            bundle.to_str().unwrap(),
        ],
    );
    bundle
}

/// Whether every command in `tools` can be found (`command -v`, so absolute paths work too).
pub fn have_commands(tools: &[&str]) -> bool {
    tools.iter().all(|t| {
        Command::new("sh")
            .args(["-c", &format!("command -v {t}")])
            .output()
            .is_ok_and(|o| o.status.success())
    })
}

/// `kiln ARGS` on `store` with `config` as its docker config directory (credentials),
/// nothing inherited.
pub fn kiln_with_config(store: &Path, config: &Path, args: &[&str]) -> Output {
    Command::new(KILN)
        .arg("--root")
        .arg(store)
        .args(args)
        .env("DOCKER_CONFIG", config)
        .env_remove("KILN_ROOT")
        .env_remove("SOURCE_DATE_EPOCH")
        .output()
        .unwrap()
}

/// `kiln build --progress=plain --metadata-file METADATA ARGS` on `store`, with `config` as
/// its docker config directory when given; returns (success, progress, manifest digest,
/// empty when the build recorded none).
pub fn build_with_metadata(
    store: &Path,
    config: Option<&Path>,
    metadata: &Path,
    args: &[&str],
) -> (bool, String, String) {
    // A file left by an earlier build must not pass for this one's digest.
    let _ = fs::remove_file(metadata);
    let mut full = vec![
        "build",
        "--progress=plain",
        "--metadata-file",
        metadata.to_str().unwrap(),
    ];
    full.extend_from_slice(args);
    let out = match config {
        Some(config) => kiln_with_config(store, config, &full),
        None => kiln_at(store, &full),
    };
    let progress = format!("{}{}", text(&out.stdout), text(&out.stderr));
    let digest = metadata_digest(metadata).unwrap_or_default();
    (out.status.success(), progress, digest)
}

/// The manifest digest a `--metadata-file` recorded, or `None` when the build wrote none.
pub fn metadata_digest(path: &Path) -> Option<String> {
    let bytes = fs::read(path).ok()?;
    let metadata: Value = serde_json::from_slice(&bytes).ok()?;
    metadata["containerimage.digest"]
        .as_str()
        .map(str::to_string)
}

/// Pushes the store's busybox base to `dest` (`HOST/busybox:latest`) with skopeo, logging
/// in with `creds` (`USER:PASSWORD`) when given.
pub fn seed_busybox(env: &Env, dest: &str, creds: Option<&str>) {
    let archive = env.path("busybox-docker.tar");
    if !archive.exists() {
        let out = env.kiln(&["save", "-o", archive.to_str().unwrap(), "busybox:latest"]);
        assert!(
            out.status.success(),
            "kiln save failed ({:?}):\n{}",
            out.status,
            text(&out.stderr)
        );
    }
    let source = format!("docker-archive:{}", archive.display());
    let target = format!("docker://{dest}");
    let mut args = vec!["copy", "-q", "--dest-tls-verify=false"];
    if let Some(c) = creds {
        args.extend(["--dest-creds", c]);
    }
    args.extend([source.as_str(), target.as_str()]);
    run_ok("skopeo", &args);
}
