//! Throughput of the layer writer and unpacker on a generated tree. Not a pass/fail test:
//! run `cargo test --release -p kiln-exporter --test throughput -- --ignored --nocapture`.

use std::fs;
use std::path::Path;
use std::time::Instant;

use kiln_exporter::{Compression, LayerOptions, LayerSource, export_local, write_layer};

const FILES: usize = 64;
const FILE_SIZE: usize = 4 << 20;

/// Half pseudo-random bytes, half repetitive text: compresses roughly like binaries do.
fn fill(root: &Path) {
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    for i in 0..FILES {
        let dir = root.join(format!("d{}", i % 8));
        fs::create_dir_all(&dir).unwrap();
        let mut data = Vec::with_capacity(FILE_SIZE);
        while data.len() < FILE_SIZE / 2 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            data.extend_from_slice(&state.to_le_bytes());
        }
        while data.len() < FILE_SIZE {
            data.extend_from_slice(format!("line {} of file {i}\n", data.len()).as_bytes());
        }
        fs::write(dir.join(format!("f{i}")), &data).unwrap();
    }
}

#[test]
#[ignore = "measurement, not a check; run explicitly in release mode"]
fn layer_throughput() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    fill(&src);
    let total_mib = (FILES * FILE_SIZE) as f64 / (1 << 20) as f64;
    let mut gzip_layer = None;
    for compression in [
        Compression::Uncompressed,
        Compression::Gzip,
        Compression::Zstd,
    ] {
        let opts = LayerOptions {
            compression,
            source_date_epoch: Some(0),
            ..Default::default()
        };
        let start = Instant::now();
        let layer = write_layer(LayerSource::Tree(&src), &opts, &dir.path().join("blobs")).unwrap();
        let secs = start.elapsed().as_secs_f64();
        println!(
            "write_layer {compression:?}: {total_mib:.0} MiB in {secs:.2}s = {:.0} MiB/s, blob {:.1} MiB",
            total_mib / secs,
            layer.size as f64 / (1 << 20) as f64
        );
        if compression == Compression::Gzip {
            gzip_layer = Some(layer);
        }
    }
    let layer = gzip_layer.unwrap();
    let start = Instant::now();
    export_local(&[layer], &dir.path().join("out")).unwrap();
    let secs = start.elapsed().as_secs_f64();
    println!(
        "export_local gzip: {total_mib:.0} MiB in {secs:.2}s = {:.0} MiB/s",
        total_mib / secs
    );
}
