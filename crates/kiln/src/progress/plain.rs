//! `--progress=plain`: every event on its own line, prefixed with the step number, a blank
//! line whenever output moves to another step. `quiet` is the same lines for failed steps
//! only, with the step's last log lines.

use std::fmt::Write as _;

use super::{Change, Renderer, Vertex};

pub(super) struct PlainRenderer {
    quiet: bool,
    /// The step the last line belonged to.
    current: Option<usize>,
    /// Steps whose `#N description` line has been printed.
    announced: Vec<bool>,
}

impl PlainRenderer {
    pub(super) fn new() -> Self {
        PlainRenderer {
            quiet: false,
            current: None,
            announced: Vec::new(),
        }
    }

    pub(super) fn quiet() -> Self {
        PlainRenderer {
            quiet: true,
            ..Self::new()
        }
    }

    /// Separates steps and makes sure the step was introduced before its first event.
    fn switch_to(&mut self, out: &mut String, v: &Vertex, index: usize) {
        if self.current.is_some_and(|c| c != index) {
            out.push('\n');
        }
        self.current = Some(index);
        if self.announced.len() <= index {
            self.announced.resize(index + 1, false);
        }
        if !self.announced[index] {
            self.announced[index] = true;
            let _ = writeln!(out, "#{} {}", v.number, v.description);
        }
    }
}

impl Renderer for PlainRenderer {
    fn change(&mut self, out: &mut String, vertices: &[Vertex], index: usize, change: Change<'_>) {
        let v = &vertices[index];
        let n = v.number;
        if self.quiet {
            if let Change::Failed(_, message) = change {
                self.switch_to(out, v, index);
                for line in &v.logs {
                    let _ = writeln!(out, "#{n} {line}");
                }
                let _ = writeln!(out, "#{n} ERROR: {message}");
            }
            return;
        }
        self.switch_to(out, v, index);
        let _ = match change {
            Change::Started => Ok(()),
            Change::Log(line, at) => writeln!(out, "#{n} {:.3} {line}", at.as_secs_f64()),
            Change::Done(elapsed) => writeln!(out, "#{n} DONE {:.1}s", elapsed.as_secs_f64()),
            Change::Cached(_) => writeln!(out, "#{n} CACHED"),
            Change::Failed(_, message) => writeln!(out, "#{n} ERROR: {message}"),
            Change::Canceled => writeln!(out, "#{n} CANCELED"),
        };
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use kiln_graph::NodeId;
    use kiln_solver::Event;

    use super::super::testing::SharedBuf;
    use super::super::{Progress, ProgressMode};

    fn progress(mode: ProgressMode) -> (Progress, SharedBuf) {
        let buf = SharedBuf::default();
        let p = Progress::with_writer(mode, Box::new(buf.clone()), false);
        for (i, d) in [
            "[build 1/3] FROM busybox",
            "[build 2/3] RUN make",
            "[build 3/3] RUN test",
        ]
        .iter()
        .enumerate()
        {
            p.describe(NodeId(i), d);
        }
        (p, buf)
    }

    /// Log offsets depend on the clock: `#N 0.000 line` becomes `#N T line`.
    fn without_offsets(text: &str) -> String {
        text.lines()
            .map(|l| {
                let mut parts = l.splitn(3, ' ');
                match (parts.next(), parts.next(), parts.next()) {
                    (Some(n), Some(t), Some(rest))
                        if t.contains('.') && t.parse::<f64>().is_ok() =>
                    {
                        format!("{n} T {rest}")
                    }
                    _ => l.to_owned(),
                }
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    #[test]
    fn numbers_steps_in_start_order_and_separates_them() {
        let (p, buf) = progress(ProgressMode::Plain);
        p.cached(NodeId(0), "[build 1/3] FROM busybox", Some("same digest"));
        p.event(&Event::Started { node: NodeId(1) });
        p.event(&Event::Log {
            node: NodeId(1),
            line: "compiling\n".into(),
        });
        p.event(&Event::Started { node: NodeId(2) });
        p.event(&Event::Log {
            node: NodeId(1),
            line: "linking".into(),
        });
        p.event(&Event::Finished {
            node: NodeId(1),
            elapsed: Duration::from_millis(1234),
        });
        p.event(&Event::Failed {
            node: NodeId(2),
            elapsed: Duration::from_millis(50),
            message: "exit code: 1".into(),
        });
        p.finish();
        let expected = "\
#1 [build 1/3] FROM busybox
#1 CACHED

#2 [build 2/3] RUN make
#2 T compiling

#3 [build 3/3] RUN test

#2 T linking
#2 DONE 1.2s

#3 ERROR: exit code: 1";
        assert_eq!(without_offsets(&buf.text()), expected);
    }

    #[test]
    fn log_offsets_have_millisecond_precision() {
        let (p, buf) = progress(ProgressMode::Plain);
        p.event(&Event::Log {
            node: NodeId(1),
            line: "x".into(),
        });
        let text = buf.text();
        let line = text.lines().nth(1).unwrap();
        let offset = line.split(' ').nth(1).unwrap();
        assert_eq!(offset.split('.').nth(1).map(str::len), Some(3), "{line}");
    }

    #[test]
    fn skipped_steps_that_never_ran_print_nothing_and_started_ones_are_canceled() {
        let (p, buf) = progress(ProgressMode::Plain);
        p.event(&Event::Skipped { node: NodeId(0) });
        p.event(&Event::Started { node: NodeId(1) });
        p.event(&Event::Skipped { node: NodeId(1) });
        // A late event for a finished step does not print a second outcome.
        p.event(&Event::Finished {
            node: NodeId(1),
            elapsed: Duration::ZERO,
        });
        assert_eq!(buf.text(), "#1 [build 2/3] RUN make\n#1 CANCELED\n");
    }

    #[test]
    fn quiet_prints_only_failures_with_their_last_logs() {
        let (p, buf) = progress(ProgressMode::Quiet);
        p.event(&Event::Started { node: NodeId(0) });
        p.event(&Event::Finished {
            node: NodeId(0),
            elapsed: Duration::ZERO,
        });
        p.event(&Event::Started { node: NodeId(2) });
        p.event(&Event::Log {
            node: NodeId(2),
            line: "assertion failed".into(),
        });
        assert_eq!(buf.text(), "");
        p.event(&Event::Failed {
            node: NodeId(2),
            elapsed: Duration::ZERO,
            message: "exit code: 2".into(),
        });
        assert_eq!(
            buf.text(),
            "#2 [build 3/3] RUN test\n#2 assertion failed\n#2 ERROR: exit code: 2\n"
        );
    }

    #[test]
    fn cached_event_prints_the_step_once() {
        let (p, buf) = progress(ProgressMode::Plain);
        p.event(&Event::Cached { node: NodeId(1) });
        p.event(&Event::Started { node: NodeId(2) });
        p.event(&Event::Cached { node: NodeId(2) });
        assert_eq!(
            buf.text(),
            "#1 [build 2/3] RUN make\n#1 CACHED\n\n#2 [build 3/3] RUN test\n#2 CACHED\n"
        );
    }

    #[test]
    fn an_explicit_start_is_not_repeated_by_the_started_event() {
        let (p, buf) = progress(ProgressMode::Plain);
        p.start_vertex(
            NodeId(5),
            "[internal] load build definition from Dockerfile",
        );
        p.event(&Event::Started { node: NodeId(5) });
        p.event(&Event::Finished {
            node: NodeId(5),
            elapsed: Duration::from_millis(40),
        });
        assert_eq!(
            buf.text(),
            "#1 [internal] load build definition from Dockerfile\n#1 DONE 0.0s\n"
        );
    }

    #[test]
    fn tasks_are_numbered_with_nodes() {
        let (p, buf) = progress(ProgressMode::Plain);
        p.event(&Event::Started { node: NodeId(0) });
        p.event(&Event::Finished {
            node: NodeId(0),
            elapsed: Duration::ZERO,
        });
        let task = p.start_task("exporting to image");
        p.task_log(task, "writing layers");
        p.task_done(task, None);
        let text = without_offsets(&buf.text());
        assert!(
            text.ends_with("\n\n#2 exporting to image\n#2 T writing layers\n#2 DONE 0.0s"),
            "{text}"
        );
    }
}
