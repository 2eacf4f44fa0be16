//! What a RUN step asks for ([`ProcessSpec`]) and the OCI runtime spec runc gets for it.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use oci_spec::runtime::{
    Capability, LinuxBuilder, LinuxCapabilitiesBuilder, LinuxDeviceCgroupBuilder,
    LinuxNamespaceBuilder, LinuxNamespaceType, LinuxResourcesBuilder, Mount, MountBuilder,
    PosixRlimitBuilder, PosixRlimitType, ProcessBuilder, RootBuilder, Spec, SpecBuilder,
    UserBuilder,
};

use crate::error::{Error, Result};
use crate::users::ResolvedUser;

/// The network a RUN step gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum NetworkMode {
    /// A fresh network namespace with only loopback.
    None,
    /// The host's network namespace.
    Host,
    /// For now the same as `None`: a fresh namespace with only loopback. Bridged networking
    /// (a veth pair and NAT) is not implemented yet.
    #[default]
    Default,
}

/// A mount added to the container besides the standard /proc, /dev, /sys set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExtraMount {
    /// A host path bound into the container.
    Bind {
        source: PathBuf,
        destination: PathBuf,
        readonly: bool,
    },
    /// A fresh tmpfs, optionally size-limited.
    Tmpfs {
        destination: PathBuf,
        size_bytes: Option<u64>,
    },
    /// A small file made for this run (`/etc/resolv.conf`, `/etc/hosts`), bound in.
    File {
        destination: PathBuf,
        contents: Vec<u8>,
        readonly: bool,
    },
}

impl ExtraMount {
    pub fn destination(&self) -> &Path {
        match self {
            Self::Bind { destination, .. }
            | Self::Tmpfs { destination, .. }
            | Self::File { destination, .. } => destination,
        }
    }
}

/// One process to run in a container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessSpec {
    pub args: Vec<String>,
    /// `KEY=value` entries. `PATH` and `HOME` get defaults when absent.
    pub env: Vec<String>,
    /// Absolute working directory; created (owned by the user) when missing.
    pub cwd: String,
    /// `USER` value: `name`, `uid`, `name:group`, `uid:gid`; empty for root.
    pub user: String,
    pub network: NetworkMode,
    pub mounts: Vec<ExtraMount>,
    pub hostname: String,
}

impl ProcessSpec {
    pub fn new<S: Into<String>>(args: impl IntoIterator<Item = S>) -> Self {
        Self {
            args: args.into_iter().map(Into::into).collect(),
            env: Vec::new(),
            cwd: "/".into(),
            user: String::new(),
            network: NetworkMode::Default,
            mounts: Vec::new(),
            hostname: "kiln".into(),
        }
    }

    /// `/etc/hosts` and `/etc/resolv.conf` for the chosen network, as mounts to add.
    /// Host networking gets the host's resolv.conf; the others get it too, so tools that
    /// read it do not fail, though without a network it leads nowhere.
    pub fn with_network_files(mut self) -> Self {
        let hosts = format!(
            "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.1.1\t{}\n",
            self.hostname
        );
        let resolv = std::fs::read("/etc/resolv.conf").unwrap_or_default();
        self.mounts.push(ExtraMount::File {
            destination: "/etc/hosts".into(),
            contents: hosts.into_bytes(),
            readonly: false,
        });
        self.mounts.push(ExtraMount::File {
            destination: "/etc/resolv.conf".into(),
            contents: resolv,
            readonly: false,
        });
        self
    }
}

pub const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The capabilities a RUN step keeps (the same set Docker and BuildKit give containers).
pub const DEFAULT_CAPABILITIES: &[Capability] = &[
    Capability::Chown,
    Capability::DacOverride,
    Capability::Fsetid,
    Capability::Fowner,
    Capability::Mknod,
    Capability::NetRaw,
    Capability::Setgid,
    Capability::Setuid,
    Capability::Setfcap,
    Capability::Setpcap,
    Capability::NetBindService,
    Capability::SysChroot,
    Capability::Kill,
    Capability::AuditWrite,
];

/// Kernel interfaces hidden from RUN steps (they leak host details or allow harm).
const MASKED_PATHS: &[&str] = &[
    "/proc/acpi",
    "/proc/asound",
    "/proc/interrupts",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/sys/devices/virtual/powercap",
    "/sys/firmware",
];

const READONLY_PATHS: &[&str] = &[
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// Where the `i`-th [`ExtraMount::File`] is written inside the bundle.
pub(crate) fn file_mount_source(files_dir: &Path, i: usize) -> PathBuf {
    files_dir.join(i.to_string())
}

/// Destinations of the standard mounts, for stub cleanup.
pub(crate) const STANDARD_MOUNT_POINTS: &[&str] = &["/proc", "/dev", "/sys"];

/// Builds the runtime spec: `rootfs` is the mounted snapshot, `files_dir` holds the
/// contents of `File` mounts, `scratch` is recorded so stale cleanup can find the bundle.
pub fn build_spec(
    rootfs: &Path,
    process: &ProcessSpec,
    user: &ResolvedUser,
    files_dir: &Path,
    cgroups_path: &str,
) -> Result<Spec> {
    if process.args.is_empty() {
        return Err(Error::InvalidProcess("no command to run".into()));
    }
    if !process.cwd.starts_with('/') {
        return Err(Error::InvalidProcess(format!(
            "working directory {:?} is not absolute",
            process.cwd
        )));
    }
    let mut env = process.env.clone();
    if !env.iter().any(|e| e.starts_with("PATH=")) {
        env.push(DEFAULT_PATH.into());
    }
    if !env.iter().any(|e| e.starts_with("HOME=")) {
        env.push(format!("HOME={}", user.home));
    }
    let caps: HashSet<Capability> = DEFAULT_CAPABILITIES.iter().copied().collect();
    let capabilities = LinuxCapabilitiesBuilder::default()
        .bounding(caps.clone())
        .effective(caps.clone())
        .permitted(caps)
        .inheritable(HashSet::new())
        .ambient(HashSet::new())
        .build()?;
    let mut user_builder = UserBuilder::default().uid(user.uid).gid(user.gid);
    if !user.additional_gids.is_empty() {
        user_builder = user_builder.additional_gids(user.additional_gids.clone());
    }
    let proc = ProcessBuilder::default()
        .terminal(false)
        .user(user_builder.build()?)
        .args(process.args.clone())
        .env(env)
        .cwd(&process.cwd)
        .capabilities(capabilities)
        .rlimits(vec![
            PosixRlimitBuilder::default()
                .typ(PosixRlimitType::RlimitNofile)
                .soft(nofile_limit())
                .hard(nofile_limit())
                .build()?,
        ])
        .no_new_privileges(false)
        .build()?;

    let mut namespaces = Vec::new();
    for typ in [
        LinuxNamespaceType::Pid,
        LinuxNamespaceType::Ipc,
        LinuxNamespaceType::Uts,
        LinuxNamespaceType::Mount,
    ] {
        namespaces.push(LinuxNamespaceBuilder::default().typ(typ).build()?);
    }
    if process.network != NetworkMode::Host {
        namespaces.push(
            LinuxNamespaceBuilder::default()
                .typ(LinuxNamespaceType::Network)
                .build()?,
        );
    }
    let linux = LinuxBuilder::default()
        .namespaces(namespaces)
        .masked_paths(
            MASKED_PATHS
                .iter()
                .map(|s| s.to_string())
                .collect::<Vec<_>>(),
        )
        .readonly_paths(
            READONLY_PATHS
                .iter()
                .map(|s| s.to_string())
                .collect::<Vec<_>>(),
        )
        .resources(
            LinuxResourcesBuilder::default()
                .devices(vec![
                    LinuxDeviceCgroupBuilder::default()
                        .allow(false)
                        .access("rwm")
                        .build()?,
                ])
                .build()?,
        )
        .cgroups_path(cgroups_path)
        .build()?;

    let mut mounts = standard_mounts()?;
    for (i, m) in process.mounts.iter().enumerate() {
        mounts.push(match m {
            ExtraMount::Bind {
                source,
                destination,
                readonly,
            } => bind(source, destination, *readonly)?,
            ExtraMount::File {
                destination,
                readonly,
                ..
            } => bind(&file_mount_source(files_dir, i), destination, *readonly)?,
            ExtraMount::Tmpfs {
                destination,
                size_bytes,
            } => {
                let mut options = vec![
                    "nosuid".to_string(),
                    "nodev".to_string(),
                    "mode=1777".to_string(),
                ];
                if let Some(size) = size_bytes {
                    options.push(format!("size={size}"));
                }
                mount(destination, "tmpfs", "tmpfs", &options)?
            }
        });
    }

    Ok(SpecBuilder::default()
        .version("1.0.2")
        .root(
            RootBuilder::default()
                .path(rootfs)
                .readonly(false)
                .build()?,
        )
        .process(proc)
        .hostname(process.hostname.clone())
        .mounts(mounts)
        .linux(linux)
        .annotations(HashMap::from([(
            "dev.kiln.rootfs".to_string(),
            rootfs.display().to_string(),
        )]))
        .build()?)
}

/// Open-file limit for RUN steps: generous, but never above what this process may hold
/// (runc cannot raise a hard limit past it; the attempt fails the whole run).
fn nofile_limit() -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct we pass and nothing else.
    let ok = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } == 0;
    let ours = if ok { lim.rlim_max } else { 1024 };
    ours.min(1_048_576)
}

fn mount(
    dest: impl AsRef<Path>,
    typ: &str,
    source: impl AsRef<Path>,
    options: &[String],
) -> Result<Mount> {
    Ok(MountBuilder::default()
        .destination(dest.as_ref())
        .typ(typ)
        .source(source.as_ref())
        .options(options.to_vec())
        .build()?)
}

fn bind(source: &Path, dest: &Path, readonly: bool) -> Result<Mount> {
    let opts = [
        "rbind".to_string(),
        "nosuid".to_string(),
        "nodev".to_string(),
        if readonly { "ro" } else { "rw" }.to_string(),
    ];
    mount(dest, "bind", source, &opts)
}

fn standard_mounts() -> Result<Vec<Mount>> {
    let o = |s: &[&str]| s.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    Ok(vec![
        mount("/proc", "proc", "proc", &o(&["nosuid", "noexec", "nodev"]))?,
        mount(
            "/dev",
            "tmpfs",
            "tmpfs",
            &o(&["nosuid", "strictatime", "mode=755", "size=65536k"]),
        )?,
        mount(
            "/dev/pts",
            "devpts",
            "devpts",
            &o(&[
                "nosuid",
                "noexec",
                "newinstance",
                "ptmxmode=0666",
                "mode=0620",
                "gid=5",
            ]),
        )?,
        mount(
            "/dev/shm",
            "tmpfs",
            "shm",
            &o(&["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]),
        )?,
        mount(
            "/dev/mqueue",
            "mqueue",
            "mqueue",
            &o(&["nosuid", "noexec", "nodev"]),
        )?,
        mount(
            "/sys",
            "sysfs",
            "sysfs",
            &o(&["nosuid", "noexec", "nodev", "ro"]),
        )?,
        mount(
            "/sys/fs/cgroup",
            "cgroup",
            "cgroup",
            &o(&["nosuid", "noexec", "nodev", "relatime", "ro"]),
        )?,
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_has_namespaces_user_env_and_mounts() {
        let mut p = ProcessSpec::new(["sh", "-c", "true"]);
        p.network = NetworkMode::None;
        p.mounts.push(ExtraMount::Tmpfs {
            destination: "/tmp".into(),
            size_bytes: Some(1 << 20),
        });
        p = p.with_network_files();
        let user = ResolvedUser {
            uid: 1000,
            gid: 1000,
            additional_gids: vec![10],
            home: "/home/app".into(),
        };
        let spec =
            build_spec(Path::new("/r"), &p, &user, Path::new("/b/files"), "/kiln/x").unwrap();
        let json = serde_json::to_value(&spec).unwrap();
        assert_eq!(json["process"]["user"]["uid"], 1000);
        assert_eq!(json["process"]["user"]["additionalGids"][0], 10);
        let env: Vec<String> = serde_json::from_value(json["process"]["env"].clone()).unwrap();
        assert!(
            env.contains(&"HOME=/home/app".to_string())
                && env.iter().any(|e| e.starts_with("PATH="))
        );
        let ns: Vec<&str> = json["linux"]["namespaces"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["type"].as_str().unwrap())
            .collect();
        assert!(ns.contains(&"network") && ns.contains(&"pid") && ns.contains(&"mount"));
        let dests: Vec<&str> = json["mounts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["destination"].as_str().unwrap())
            .collect();
        for d in [
            "/proc",
            "/dev",
            "/dev/pts",
            "/dev/shm",
            "/sys",
            "/tmp",
            "/etc/hosts",
            "/etc/resolv.conf",
        ] {
            assert!(dests.contains(&d), "{d} missing");
        }
        let hosts = json["mounts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["destination"] == "/etc/hosts")
            .unwrap();
        assert_eq!(hosts["source"], "/b/files/1");
        assert_eq!(json["process"]["noNewPrivileges"], false);
        assert!(
            json["process"]["capabilities"]["ambient"]
                .as_array()
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn host_network_shares_the_namespace_and_bad_input_is_refused() {
        let mut p = ProcessSpec::new(["true"]);
        p.network = NetworkMode::Host;
        let spec = build_spec(
            Path::new("/r"),
            &p,
            &ResolvedUser::root(),
            Path::new("/b"),
            "/k",
        )
        .unwrap();
        let json = serde_json::to_value(&spec).unwrap();
        assert!(
            !json["linux"]["namespaces"]
                .as_array()
                .unwrap()
                .iter()
                .any(|n| n["type"] == "network")
        );
        assert!(
            build_spec(
                Path::new("/r"),
                &ProcessSpec::new(Vec::<String>::new()),
                &ResolvedUser::root(),
                Path::new("/b"),
                "/k"
            )
            .is_err()
        );
        p.cwd = "relative".into();
        assert!(
            build_spec(
                Path::new("/r"),
                &p,
                &ResolvedUser::root(),
                Path::new("/b"),
                "/k"
            )
            .is_err()
        );
    }
}
