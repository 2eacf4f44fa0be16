//! `--output` values as buildx reads them.

use std::collections::BTreeMap;
use std::path::PathBuf;

use kiln_exporter::Compression;

/// Where a build's result goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutputKind {
    /// kiln's image store (`type=image` without push; also `-t` alone).
    Image,
    /// An OCI archive, or an OCI layout directory with `tar=false`.
    Oci { dest: PathBuf, tar: bool },
    /// What `docker load` reads.
    Docker { dest: PathBuf },
    /// The final filesystem as a directory.
    Local { dest: PathBuf },
    /// The final filesystem as a tarball.
    Tar { dest: PathBuf },
    /// Pushing to a registry (not served yet).
    Registry,
    /// Build only, keep nothing but the cache.
    CacheOnly,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputSpec {
    pub kind: OutputKind,
    /// `name=` image names for this output (besides `-t`).
    pub names: Vec<String>,
    pub compression: Option<String>,
    pub compression_level: Option<i32>,
    pub push: bool,
    pub attrs: BTreeMap<String, String>,
}

/// Parses one `--output` value: `type=KIND,key=value,...`, or a bare path (`type=local`).
pub fn parse_output(text: &str) -> Result<OutputSpec, String> {
    if !text.contains('=') {
        if text == "-" {
            return Ok(spec(OutputKind::Tar {
                dest: PathBuf::from("-"),
            }));
        }
        return Ok(spec(OutputKind::Local {
            dest: PathBuf::from(text),
        }));
    }
    let mut attrs = BTreeMap::new();
    for field in text.split(',') {
        let (key, value) = field
            .split_once('=')
            .ok_or_else(|| format!("invalid --output {text:?}: {field:?} is not key=value"))?;
        attrs.insert(key.trim().to_ascii_lowercase(), value.to_string());
    }
    let kind_name = attrs.remove("type").unwrap_or_else(|| "local".to_string());
    let mut dest = || {
        attrs
            .remove("dest")
            .map(PathBuf::from)
            .ok_or_else(|| format!("--output type={kind_name} needs dest=PATH"))
    };
    let kind = match kind_name.as_str() {
        "image" => OutputKind::Image,
        "registry" => OutputKind::Registry,
        "oci" => {
            let dest = dest()?;
            OutputKind::Oci {
                dest,
                tar: attrs.get("tar").is_none_or(|v| v != "false"),
            }
        }
        "docker" => OutputKind::Docker { dest: dest()? },
        "local" => {
            let dest = dest()?;
            if dest.as_os_str() == "-" {
                return Err(
                    "--output type=local needs a directory, not -; use type=tar,dest=- for stdout"
                        .into(),
                );
            }
            OutputKind::Local { dest }
        }
        "tar" => OutputKind::Tar { dest: dest()? },
        "cacheonly" => OutputKind::CacheOnly,
        other => {
            return Err(format!(
                "unknown --output type {other:?}: expected image, registry, oci, docker, local, tar or cacheonly"
            ));
        }
    };
    let mut out = spec(kind);
    if let Some(names) = attrs.remove("name") {
        out.names = names
            .split(',')
            .map(str::to_string)
            .filter(|n| !n.is_empty())
            .collect();
    }
    out.compression = attrs.remove("compression");
    if let Some(level) = attrs.remove("compression-level") {
        out.compression_level = Some(
            level
                .parse()
                .map_err(|_| format!("invalid compression-level {level:?}: expected a number"))?,
        );
    }
    out.push = attrs.remove("push").is_some_and(|v| v == "true");
    if out.kind == OutputKind::Registry {
        out.push = true;
    }
    if let Some(c) = &out.compression
        && Compression::parse(c).is_none()
    {
        return Err(format!(
            "invalid compression {c:?}: expected gzip, zstd or uncompressed"
        ));
    }
    out.attrs = attrs;
    Ok(out)
}

fn spec(kind: OutputKind) -> OutputSpec {
    OutputSpec {
        kind,
        names: vec![],
        compression: None,
        compression_level: None,
        push: false,
        attrs: BTreeMap::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_forms() {
        assert_eq!(
            parse_output("out").unwrap().kind,
            OutputKind::Local { dest: "out".into() }
        );
        let oci = parse_output("type=oci,dest=img.tar,compression=zstd").unwrap();
        assert_eq!(
            oci.kind,
            OutputKind::Oci {
                dest: "img.tar".into(),
                tar: true
            }
        );
        assert_eq!(oci.compression.as_deref(), Some("zstd"));
        assert_eq!(
            parse_output("type=oci,dest=dir,tar=false").unwrap().kind,
            OutputKind::Oci {
                dest: "dir".into(),
                tar: false
            }
        );
        let image = parse_output("type=image,name=a:1,push=true").unwrap();
        assert!(image.push && image.names == vec!["a:1"]);
        assert!(parse_output("type=registry").unwrap().push);
        assert!(parse_output("type=docker").is_err());
        assert!(parse_output("type=weird,dest=x").is_err());
        assert!(parse_output("type=oci,dest=x,compression=lz4").is_err());
        assert_eq!(
            parse_output("-").unwrap().kind,
            OutputKind::Tar { dest: "-".into() }
        );
        assert!(parse_output("type=local,dest=-").is_err());
    }
}
