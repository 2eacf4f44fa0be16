//! End to end: Dockerfiles on a busybox base built with real runc containers and overlayfs
//! snapshots, exported, and checked on disk.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use kiln_exporter::imagestore;
use kiln_exporter::testutil::busybox_image;
use kiln_exporter::{
    BuiltImage, ImageOptions, LayerOptions, ManifestFormat, build_image, export_local,
};
use kiln_graph::Graph;
use kiln_solver::build::{BuildRequest, StoreImages, plan};
use kiln_solver::engine::export::stage_image;
use kiln_solver::engine::{Engine, EngineConfig, SecretSource};
use kiln_solver::{SolveOptions, solve};
use kiln_store::Store;
use kiln_worker::CancelToken;

fn can_run() -> bool {
    let ok = kiln_worker::have_root()
        && Path::new("/usr/sbin/runc").exists()
        && kiln_exporter::testutil::busybox_available();
    if !ok {
        eprintln!("skipped: needs root, runc and busybox-static");
    }
    ok
}

struct Harness {
    _tmp: tempfile::TempDir,
    store: Arc<Store>,
    context: PathBuf,
    work: PathBuf,
}

impl Harness {
    fn new() -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let store = Arc::new(Store::open(tmp.path().join("store")).unwrap());
        let work = tmp.path().join("work");
        std::fs::create_dir_all(&work).unwrap();
        let base = busybox_image(&work.join("busybox")).unwrap();
        imagestore::save(&store, &base, &["busybox".to_string()]).unwrap();
        let context = tmp.path().join("ctx");
        std::fs::create_dir_all(&context).unwrap();
        Harness {
            _tmp: tmp,
            store,
            context,
            work,
        }
    }

    fn file(&self, rel: &str, text: &str) {
        let path = self.context.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    fn build(
        &self,
        dockerfile: &str,
        args: &[(&str, &str)],
        secrets: HashMap<String, SecretSource>,
    ) -> Result<BuiltImage, String> {
        let request = BuildRequest {
            dockerfile_label: "Dockerfile".into(),
            dockerfile_text: dockerfile.into(),
            context: Some(self.context.clone()),
            build_args: args
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ..Default::default()
        };
        let images = Arc::new(StoreImages::new(self.store.clone()));
        let mut graph = Graph::new();
        let stage = plan(&mut graph, &images, &request).map_err(|e| e.to_string())?;
        let engine = Engine::new(
            self.store.clone(),
            EngineConfig {
                local_contexts: HashMap::new(),
                secrets,
                images: images.clone(),
            },
            CancelToken::new(),
        );
        let outcome = solve(
            &graph,
            &[stage.fs],
            &engine,
            &SolveOptions::default(),
            &|_| {},
        );
        if let Some((_, e)) = outcome.failures.first() {
            return Err(e.to_string());
        }
        let options = LayerOptions {
            source_date_epoch: Some(0),
            ..Default::default()
        };
        let image = stage_image(&engine, &graph, &stage, &outcome.outputs, 0, &options)
            .map_err(|e| e.to_string())?;
        build_image(
            &image.config,
            &image.layers,
            &ImageOptions {
                format: ManifestFormat::Oci,
                annotations: BTreeMap::new(),
                source_date_epoch: Some(0),
            },
        )
        .map_err(|e| e.to_string())
    }

    fn rootfs(&self, image: &BuiltImage, name: &str) -> PathBuf {
        let dest = self.work.join(name);
        export_local(&image.layers, &dest).unwrap();
        dest
    }
}

#[test]
fn multi_stage_build_runs_containers_and_exports_the_filesystem() {
    if !can_run() {
        return;
    }
    let h = Harness::new();
    h.file("app/main.sh", "echo main\n");
    h.file("app/README.md", "docs\n");
    std::os::unix::fs::chown(h.context.join("app/main.sh"), Some(4242), Some(4242)).unwrap();
    let image = h
        .build(
            "FROM busybox AS build\nRUN echo built > /out && rm /etc/group\nFROM busybox\nCOPY --from=build /out /result\nCOPY app/ /app/\nRUN ln /app/main.sh /app/hard && ln -s main.sh /app/soft\nWORKDIR /srv\nENV MODE=prod\nCMD [\"sh\"]\n",
            &[],
            HashMap::new(),
        )
        .unwrap();
    let root = h.rootfs(&image, "final");
    assert_eq!(
        std::fs::read_to_string(root.join("result")).unwrap(),
        "built\n"
    );
    assert_eq!(
        std::fs::read_to_string(root.join("app/main.sh")).unwrap(),
        "echo main\n"
    );
    assert!(
        root.join("etc/group").exists(),
        "the final stage did not delete /etc/group"
    );
    assert_eq!(
        std::fs::read_link(root.join("app/soft")).unwrap(),
        Path::new("main.sh")
    );
    use std::os::unix::fs::MetadataExt;
    assert_eq!(
        std::fs::metadata(root.join("app/hard")).unwrap().ino(),
        std::fs::metadata(root.join("app/main.sh")).unwrap().ino()
    );
    assert!(root.join("srv").is_dir());
    // Context files belong to root whatever their owner on the host.
    assert_eq!(
        std::fs::metadata(root.join("app/main.sh")).unwrap().uid(),
        0
    );
    let config = &image.config.config;
    assert!(config.env.contains(&"MODE=prod".to_string()));
    assert_eq!(config.working_dir, "/srv");
    assert_eq!(config.cmd, vec!["sh"]);
    assert_eq!(
        image.config.rootfs.diff_ids.len(),
        image
            .config
            .history
            .iter()
            .filter(|h| !h.empty_layer)
            .count()
    );
}

#[test]
fn env_expansion_sees_the_base_image_env() {
    if !can_run() {
        return;
    }
    let h = Harness::new();
    let image = h
        .build(
            "FROM busybox\nENV PATH=/opt/bin:$PATH\nRUN echo $PATH > /path\n",
            &[],
            HashMap::new(),
        )
        .unwrap();
    let root = h.rootfs(&image, "final");
    let path = std::fs::read_to_string(root.join("path")).unwrap();
    assert!(
        path.starts_with("/opt/bin:/") && path.trim().len() > "/opt/bin:".len(),
        "{path}"
    );
}

#[test]
fn whiteouts_remove_files_of_lower_layers() {
    if !can_run() {
        return;
    }
    let h = Harness::new();
    let image = h
        .build(
            "FROM busybox\nRUN rm /etc/group && mkdir -p /d && touch /d/x\nRUN rm -r /d\n",
            &[],
            HashMap::new(),
        )
        .unwrap();
    let root = h.rootfs(&image, "final");
    assert!(!root.join("etc/group").exists());
    assert!(!root.join("d").exists());
    assert!(root.join("etc/passwd").exists());
}

#[test]
fn failing_run_reports_the_exit_code_and_output() {
    if !can_run() {
        return;
    }
    let h = Harness::new();
    let err = h
        .build(
            "FROM busybox\nRUN echo about to fail && exit 3\n",
            &[],
            HashMap::new(),
        )
        .unwrap_err();
    assert!(err.contains("exit code: 3"), "{err}");
    assert!(err.contains("about to fail"), "{err}");
}

#[test]
fn secrets_are_mounted_but_never_stored() {
    if !can_run() {
        return;
    }
    let h = Harness::new();
    let secret_file = h.work.join("token");
    std::fs::write(&secret_file, "s3cr3t-value").unwrap();
    let mut secrets = HashMap::new();
    secrets.insert("token".to_string(), SecretSource::File(secret_file));
    let image = h
        .build(
            "FROM busybox\nRUN --mount=type=secret,id=token wc -c < /run/secrets/token > /checked\n",
            &[],
            secrets,
        )
        .unwrap();
    let root = h.rootfs(&image, "final");
    assert_eq!(
        std::fs::read_to_string(root.join("checked"))
            .unwrap()
            .trim(),
        "12"
    );
    assert!(!root.join("run/secrets/token").exists());
    for layer in &image.layers {
        let bytes = std::fs::read(&layer.path).unwrap();
        let text = kiln_exporter::decompressed(&bytes[..]).map(|mut r| {
            let mut s = Vec::new();
            std::io::Read::read_to_end(&mut r, &mut s).unwrap();
            s
        });
        if let Ok(plain) = text {
            assert!(!String::from_utf8_lossy(&plain).contains("s3cr3t-value"));
        }
    }
    let config = String::from_utf8_lossy(&image.config_blob.bytes).to_string();
    assert!(!config.contains("s3cr3t-value"));
}

#[test]
fn same_inputs_with_source_date_epoch_give_the_same_digest() {
    if !can_run() {
        return;
    }
    let h = Harness::new();
    h.file("a.txt", "a\n");
    let df = "FROM busybox\nCOPY a.txt /a.txt\nRUN echo x > /x\n";
    let one = h.build(df, &[], HashMap::new()).unwrap();
    let two = h.build(df, &[], HashMap::new()).unwrap();
    assert_eq!(
        one.manifest_blob.descriptor.digest(),
        two.manifest_blob.descriptor.digest()
    );
}

/// Serves `body` once per connection on 127.0.0.1 for `count` requests.
fn serve(body: &'static [u8], count: usize) -> String {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(count) {
            let Ok(mut stream) = stream else { continue };
            let mut request = [0u8; 2048];
            let _ = stream.read(&mut request);
            let header = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nLast-Modified: Tue, 14 Nov 2023 22:13:20 GMT\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = stream.write_all(header.as_bytes());
            let _ = stream.write_all(body);
        }
    });
    format!("http://{address}")
}

#[test]
fn add_fetches_urls_and_verifies_checksums() {
    if !can_run() {
        return;
    }
    let h = Harness::new();
    let base = serve(b"hello", 2);
    let good = "sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";
    let image = h
        .build(
            &format!("FROM busybox\nADD --checksum={good} {base}/files/greeting.txt /data/\n"),
            &[],
            HashMap::new(),
        )
        .unwrap();
    let root = h.rootfs(&image, "final");
    let file = root.join("data/greeting.txt");
    assert_eq!(std::fs::read(&file).unwrap(), b"hello");
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let meta = std::fs::metadata(&file).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    // The harness clamps layer times to SOURCE_DATE_EPOCH=0, hiding Last-Modified here.
    assert_eq!(meta.mtime(), 0);
    let bad = "sha256:0000000000000000000000000000000000000000000000000000000000000000";
    let err = h
        .build(
            &format!("FROM busybox\nADD --checksum={bad} {base}/x /x\n"),
            &[],
            HashMap::new(),
        )
        .unwrap_err();
    assert!(err.contains("checksum mismatch"), "{err}");
}
