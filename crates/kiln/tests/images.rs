//! `kiln images`, `rmi`, `save`, `load` and `import` driven through the real binary, with
//! skopeo and umoci checking that what kiln writes is what other tools read.

mod support;

use std::fs;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use support::{Env, KILN, kiln_at, prerequisites, run_ok, text};

/// Runs kiln and fails the test with its stderr unless it succeeds; returns stdout.
fn kiln_ok(root: &Path, args: &[&str]) -> String {
    let out = kiln_at(root, args);
    assert!(
        out.status.success(),
        "kiln {args:?} failed: {}",
        text(&out.stderr)
    );
    text(&out.stdout)
}

fn import_busybox(scratch: &Env, root: &Path, name: &str) -> String {
    let tar = scratch.busybox_tar();
    let id = kiln_ok(
        root,
        &[
            "import",
            "--change",
            r#"CMD ["/bin/sh"]"#,
            tar.to_str().unwrap(),
            name,
        ],
    );
    let id = id.trim().to_owned();
    assert!(
        id.starts_with("sha256:") && id.len() == 71,
        "import printed {id:?}"
    );
    id
}

#[test]
fn import_list_save_inspect_unpack_load_and_remove() {
    if !prerequisites() {
        return;
    }
    let scratch = Env::bare();
    let root = scratch.path("store");
    let id = import_busybox(&scratch, &root, "busybox:test");
    let short = &id["sha256:".len()..][..12];

    let listing = kiln_ok(&root, &["images"]);
    let mut lines = listing.lines();
    let header: Vec<&str> = lines.next().unwrap().split("   ").map(str::trim).collect();
    assert!(
        header.iter().filter(|h| !h.is_empty()).eq([
            "REPOSITORY",
            "TAG",
            "IMAGE ID",
            "CREATED",
            "SIZE"
        ]
        .iter()),
        "{listing}"
    );
    let row: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(&row[..3], ["busybox", "test", short], "{listing}");
    assert!(row[3..].join(" ").contains("ago"), "{listing}");
    let json = kiln_ok(&root, &["images", "--format", "json"]);
    let first: serde_json::Value = serde_json::from_str(json.lines().next().unwrap()).unwrap();
    assert_eq!(first["Repository"], "busybox");
    assert_eq!(first["Tag"], "test");
    assert_eq!(first["ID"], short);

    // `docker save`-style archive: skopeo reads it, umoci unpacks it once converted.
    let archive = scratch.path("busybox.tar");
    kiln_ok(
        &root,
        &["save", "-o", archive.to_str().unwrap(), "busybox:test"],
    );
    let source = format!("docker-archive:{}", archive.display());
    let inspect: serde_json::Value =
        serde_json::from_str(&run_ok("skopeo", &["inspect", &source])).unwrap();
    assert_eq!(inspect["Layers"].as_array().unwrap().len(), 1, "{inspect}");
    assert_eq!(inspect["Os"], "linux");
    let config: serde_json::Value =
        serde_json::from_str(&run_ok("skopeo", &["inspect", "--config", &source])).unwrap();
    assert_eq!(config["config"]["Cmd"][0], "/bin/sh", "{config}");

    let layout = scratch.path("layout");
    run_ok(
        "skopeo",
        &["copy", &source, &format!("oci:{}:test", layout.display())],
    );
    let bundle = scratch.path("bundle");
    run_ok(
        "umoci",
        &[
            "unpack",
            "--rootless",
            "--image",
            &format!("{}:test", layout.display()),
            bundle.to_str().unwrap(),
        ],
    );
    assert_eq!(
        fs::read(bundle.join("rootfs/bin/busybox")).unwrap(),
        fs::read("/bin/busybox").unwrap()
    );
    assert_eq!(
        fs::read_link(bundle.join("rootfs/bin/sh")).unwrap(),
        Path::new("busybox")
    );

    // An OCI archive skopeo wrote loads into a fresh store under its recorded name
    // (skopeo rewrites the config when it converts to OCI, so the ID is its own).
    let oci = scratch.path("busybox-oci.tar");
    run_ok(
        "skopeo",
        &[
            "copy",
            &source,
            &format!("oci-archive:{}:busybox:loaded", oci.display()),
        ],
    );
    let fresh = scratch.path("fresh");
    let loaded = kiln_ok(&fresh, &["load", "-i", oci.to_str().unwrap()]);
    assert_eq!(loaded, "Loaded image: busybox:loaded\n");
    let listing = kiln_ok(&fresh, &["images"]);
    assert!(
        listing
            .lines()
            .nth(1)
            .unwrap()
            .starts_with("busybox      loaded"),
        "{listing}"
    );
    // One named only by a tag comes in without a name.
    let bare = scratch.path("bare-oci.tar");
    run_ok(
        "skopeo",
        &[
            "copy",
            &source,
            &format!("oci-archive:{}:v1", bare.display()),
        ],
    );
    let loaded = kiln_ok(
        &scratch.path("bare"),
        &["load", "-i", bare.to_str().unwrap()],
    );
    assert!(loaded.starts_with("Loaded image ID: sha256:"), "{loaded}");
    let listing = kiln_ok(&scratch.path("bare"), &["images"]);
    assert!(
        listing.lines().nth(1).unwrap().starts_with("<none>"),
        "{listing}"
    );

    // The docker archive itself loads back as the same image.
    let again = scratch.path("again");
    let loaded = kiln_ok(&again, &["load", "-i", archive.to_str().unwrap()]);
    assert_eq!(loaded, "Loaded image: busybox:test\n");
    assert_eq!(kiln_ok(&again, &["images", "-q", "--no-trunc"]).trim(), id);

    let removed = kiln_ok(&root, &["rmi", "busybox:test"]);
    assert_eq!(removed, "Untagged: busybox:test\n");
    assert_eq!(kiln_ok(&root, &["images"]).lines().count(), 1);
    let out = kiln_at(&root, &["rmi", "busybox:test"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("no such image"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn save_to_stdout_and_load_from_stdin() {
    if !prerequisites() {
        return;
    }
    let scratch = Env::bare();
    let root = scratch.path("store");
    let id = import_busybox(&scratch, &root, "piped");
    let archive = scratch.path("piped.tar");
    let out = Command::new(KILN)
        .arg("--root")
        .arg(&root)
        .args(["save", "piped"])
        .stdout(fs::File::create(&archive).unwrap())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let fresh = scratch.path("fresh");
    let mut child = Command::new(KILN)
        .arg("--root")
        .arg(&fresh)
        .arg("load")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(&fs::read(&archive).unwrap())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    assert_eq!(text(&out.stdout), "Loaded image: piped:latest\n");
    let ids = kiln_ok(&fresh, &["images", "-q", "--no-trunc"]);
    assert_eq!(ids.trim(), id);
    // `import -` reads the tarball from stdin.
    let out = Command::new(KILN)
        .arg("--root")
        .arg(&fresh)
        .args(["import", "-m", "from a pipe", "-", "stdin:1"])
        .stdin(fs::File::open(scratch.path("rootfs.tar")).unwrap())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let listing = kiln_ok(&fresh, &["images", "stdin"]);
    assert_eq!(listing.lines().count(), 2, "{listing}");
    assert!(
        listing.lines().nth(1).unwrap().starts_with("stdin "),
        "{listing}"
    );
    // Nothing is left in the store's scratch space.
    assert_eq!(fs::read_dir(fresh.join("tmp")).unwrap().count(), 0);
    assert_eq!(fs::read_dir(root.join("tmp")).unwrap().count(), 0);
}

#[test]
fn rmi_by_id_needs_force_when_the_image_has_several_names() {
    if !prerequisites() {
        return;
    }
    let scratch = Env::bare();
    let root = scratch.path("store");
    let id = import_busybox(&scratch, &root, "one");
    // A second name for the same image: the saved archive, renamed by skopeo (docker
    // archive to docker archive keeps the config), loaded back.
    let archive = scratch.path("one.tar");
    kiln_ok(&root, &["save", "-o", archive.to_str().unwrap(), "one"]);
    let renamed = scratch.path("two.tar");
    run_ok(
        "skopeo",
        &[
            "copy",
            &format!("docker-archive:{}", archive.display()),
            &format!("docker-archive:{}:two:latest", renamed.display()),
        ],
    );
    let loaded = kiln_ok(&root, &["load", "-i", renamed.to_str().unwrap()]);
    assert_eq!(loaded, "Loaded image: two:latest\n");
    let short = &id["sha256:".len()..][..12];
    let out = kiln_at(&root, &["rmi", short]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("referenced by 2 names"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(kiln_ok(&root, &["images"]).lines().count(), 3);
    let out = kiln_at(&root, &["rmi", "nope", "--force", short]);
    assert_eq!(out.status.code(), Some(1), "the missing image is an error");
    let mut untagged: Vec<String> = text(&out.stdout).lines().map(str::to_owned).collect();
    untagged.sort();
    assert_eq!(untagged, ["Untagged: one:latest", "Untagged: two:latest"]);
    assert_eq!(kiln_ok(&root, &["images"]).lines().count(), 1);
}

#[test]
fn import_refuses_what_is_not_a_tarball() {
    let scratch = Env::bare();
    let root = scratch.path("store");
    let junk = scratch.path("junk");
    fs::write(&junk, "this is not a tar archive\n".repeat(40)).unwrap();
    let out = kiln_at(&root, &["import", junk.to_str().unwrap(), "junk"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("invalid root filesystem archive"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(kiln_ok(&root, &["images"]).lines().count(), 1);
    let out = kiln_at(
        &root,
        &["import", "--change", "RUN true", junk.to_str().unwrap()],
    );
    assert!(
        text(&out.stderr).contains("invalid change"),
        "{}",
        text(&out.stderr)
    );
}
