//! `--progress=rawjson`: one JSON object per line per event, for tools to parse. Every
//! object carries the step (`vertex` number, graph `node`, `name`), a `time` (RFC 3339)
//! and what happened: `status` (`started`, `done`, `cached`, `error`, `canceled`,
//! `skipped`) or a `log` line with its `offset` in seconds since the step started.

use kiln_graph::NodeId;
use serde::Serialize;

use super::{Change, Renderer, Vertex};

pub(super) struct RawJsonRenderer;

#[derive(Serialize, Default)]
struct Record<'a> {
    time: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    vertex: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    node: Option<usize>,
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    log: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    offset: Option<f64>,
    /// Seconds the step took.
    #[serde(skip_serializing_if = "Option::is_none")]
    duration: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'a str>,
}

fn push(out: &mut String, record: &Record<'_>) {
    // A struct of strings and numbers always serializes.
    if let Ok(line) = serde_json::to_string(record) {
        out.push_str(&line);
        out.push('\n');
    }
}

fn now() -> String {
    kiln_exporter::Timestamp::now().to_string()
}

impl Renderer for RawJsonRenderer {
    fn change(&mut self, out: &mut String, vertices: &[Vertex], index: usize, change: Change<'_>) {
        let v = &vertices[index];
        let mut record = Record {
            time: now(),
            vertex: Some(v.number),
            node: v.node.map(|n| n.0),
            name: &v.description,
            ..Default::default()
        };
        match change {
            Change::Started => record.status = Some("started"),
            Change::Log(line, at) => {
                record.log = Some(line);
                record.offset = Some(at.as_secs_f64());
            }
            Change::Done(elapsed) => {
                record.status = Some("done");
                record.duration = Some(elapsed.as_secs_f64());
            }
            Change::Cached(reason) => {
                record.status = Some("cached");
                record.reason = reason;
            }
            Change::Failed(elapsed, message) => {
                record.status = Some("error");
                record.duration = Some(elapsed.as_secs_f64());
                record.error = Some(message);
            }
            Change::Canceled => record.status = Some("canceled"),
        }
        push(out, &record);
    }

    fn skipped(&mut self, out: &mut String, node: NodeId, description: &str) {
        push(
            out,
            &Record {
                time: now(),
                node: Some(node.0),
                name: description,
                status: Some("skipped"),
                ..Default::default()
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use kiln_graph::NodeId;
    use kiln_solver::Event;
    use serde_json::Value;

    use super::super::testing::SharedBuf;
    use super::super::{Progress, ProgressMode};

    #[test]
    fn one_object_per_line_per_event() {
        let buf = SharedBuf::default();
        let p = Progress::with_writer(ProgressMode::RawJson, Box::new(buf.clone()), true);
        p.describe(NodeId(4), "[build 2/2] RUN echo \"hi\"");
        p.event(&Event::Started { node: NodeId(4) });
        p.event(&Event::Log {
            node: NodeId(4),
            line: "hi".into(),
        });
        p.event(&Event::Failed {
            node: NodeId(4),
            elapsed: Duration::from_millis(1500),
            message: "exit code: 1".into(),
        });
        p.cached(
            NodeId(1),
            "[build 1/2] FROM busybox",
            Some("cache key matched"),
        );
        p.event(&Event::Skipped { node: NodeId(7) });
        p.finish();
        let records: Vec<Value> = buf
            .text()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(records.len(), 5);
        assert_eq!(records[0]["vertex"], 1);
        assert_eq!(records[0]["node"], 4);
        assert_eq!(records[0]["name"], "[build 2/2] RUN echo \"hi\"");
        assert_eq!(records[0]["status"], "started");
        assert!(records[0]["time"].as_str().unwrap().ends_with('Z'));
        assert_eq!(records[1]["log"], "hi");
        assert!(records[1]["offset"].is_number());
        assert_eq!(records[2]["status"], "error");
        assert_eq!(records[2]["error"], "exit code: 1");
        assert_eq!(records[2]["duration"], 1.5);
        assert_eq!(records[3]["vertex"], 2);
        assert_eq!(records[3]["status"], "cached");
        assert_eq!(records[3]["reason"], "cache key matched");
        assert_eq!(records[4]["status"], "skipped");
        assert_eq!(records[4]["node"], 7);
        assert!(records[4].get("vertex").is_none());
    }
}
