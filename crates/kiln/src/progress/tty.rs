//! `--progress=tty`: finished steps scroll by as one line each (with their time), and
//! below them a live area is redrawn in place: a header with the total time and count,
//! then every running step with its timer and last log lines.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use super::{Change, Renderer, Status, Vertex};

/// Log lines shown under a running step when there is room.
const LOG_TAIL: usize = 6;
/// Redraws caused by log lines are at most this frequent; the ticker catches up.
const MIN_REDRAW_INTERVAL: Duration = Duration::from_millis(50);

/// Terminal width from `COLUMNS`, else 80 (kiln does not query the terminal).
pub(super) fn terminal_width() -> usize {
    env_size("COLUMNS").unwrap_or(80)
}

fn terminal_height() -> usize {
    env_size("LINES").unwrap_or(24)
}

fn env_size(var: &str) -> Option<usize> {
    std::env::var(var)
        .ok()?
        .trim()
        .parse()
        .ok()
        .filter(|&n: &usize| n >= 10)
}

pub(super) struct TtyRenderer {
    width: usize,
    height: usize,
    /// Lines of live area currently on screen (the cursor is just below them).
    drawn: usize,
    /// Finished steps waiting to be printed above the live area.
    pending: String,
    last_draw: Option<Instant>,
    started: Instant,
}

impl TtyRenderer {
    pub(super) fn new(width: usize) -> Self {
        TtyRenderer {
            width,
            height: terminal_height(),
            drawn: 0,
            pending: String::new(),
            last_draw: None,
            started: Instant::now(),
        }
    }

    /// `text` on the left, `right` flush right, within the width.
    fn row(&self, text: &str, right: &str) -> String {
        let room = self.width.saturating_sub(right.len() + 2).max(10);
        let text = clip(text, room);
        let pad = room.saturating_sub(text.chars().count());
        format!("{text}{} {right}", " ".repeat(pad + 1))
    }

    fn finished_line(&mut self, v: &Vertex) {
        let (label, elapsed) = match &v.status {
            Status::Done(d) => ("", *d),
            Status::Cached => ("CACHED ", Duration::ZERO),
            Status::Failed(d) => ("ERROR ", *d),
            Status::Canceled => ("CANCELED ", v.started.elapsed()),
            Status::Running => return,
        };
        let line = self.row(&format!(" => {label}{}", v.description), &seconds(elapsed));
        self.pending.push_str(&line);
        self.pending.push('\n');
    }

    fn failure_block(&mut self, v: &Vertex, message: &str) {
        let rule = "-".repeat(6);
        let mut block = format!(
            "{rule}\n > {}:\n",
            clip(&v.description, self.width.saturating_sub(4))
        );
        for line in &v.logs {
            let _ = writeln!(block, "{}", clip(&clean(line), self.width));
        }
        let _ = writeln!(block, "{rule}\n{}", clip(&clean(message), self.width));
        self.pending.push_str(&block);
    }

    /// Replaces the live area with `pending` lines followed by a fresh live area.
    fn redraw(&mut self, out: &mut String, vertices: &[Vertex], elapsed: Duration, last: bool) {
        if self.drawn > 0 {
            let _ = write!(out, "\x1b[{}A", self.drawn);
        }
        out.push_str("\r\x1b[J");
        out.push_str(&std::mem::take(&mut self.pending));
        let done = vertices
            .iter()
            .filter(|v| v.status != Status::Running)
            .count();
        let running: Vec<&Vertex> = vertices
            .iter()
            .filter(|v| v.status == Status::Running)
            .collect();
        let state = if last { " FINISHED" } else { "" };
        let mut lines = vec![format!(
            "[+] Building {:.1}s ({done}/{}){state}",
            elapsed.as_secs_f64(),
            vertices.len()
        )];
        let room = self.height.saturating_sub(2 + running.len());
        let tail = (room / running.len().max(1)).min(LOG_TAIL);
        for v in running {
            lines.push(self.row(
                &format!(" => {}", v.description),
                &seconds(v.started.elapsed()),
            ));
            let skip = v.logs.len().saturating_sub(tail);
            for log in v.logs.iter().skip(skip) {
                lines.push(clip(&format!(" => => # {}", clean(log)), self.width));
            }
        }
        for line in &lines {
            out.push_str(line);
            out.push('\n');
        }
        // The final header stays on screen as the last line of output.
        self.drawn = if last { 0 } else { lines.len() };
        self.last_draw = Some(Instant::now());
    }
}

impl Renderer for TtyRenderer {
    fn change(&mut self, out: &mut String, vertices: &[Vertex], index: usize, change: Change<'_>) {
        let v = &vertices[index];
        match change {
            Change::Log(..) => {
                if self
                    .last_draw
                    .is_some_and(|t| t.elapsed() < MIN_REDRAW_INTERVAL)
                {
                    return;
                }
            }
            Change::Failed(_, message) => {
                self.finished_line(v);
                self.failure_block(v, message);
            }
            Change::Started => {}
            Change::Done(_) | Change::Cached(_) | Change::Canceled => self.finished_line(v),
        }
        let elapsed = self.started.elapsed();
        self.redraw(out, vertices, elapsed, false);
    }

    fn tick(&mut self, out: &mut String, vertices: &[Vertex], elapsed: Duration) {
        self.redraw(out, vertices, elapsed, false);
    }

    fn finish(&mut self, out: &mut String, vertices: &[Vertex], elapsed: Duration) {
        self.redraw(out, vertices, elapsed, true);
    }
}

fn seconds(d: Duration) -> String {
    format!("{:.1}s", d.as_secs_f64())
}

/// At most `width` characters (an ellipsis marks the cut).
fn clip(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        return text.to_owned();
    }
    let mut out: String = text.chars().take(width.saturating_sub(3)).collect();
    out.push_str("...");
    out
}

/// Control characters in build output would move the cursor and break the redraw.
fn clean(line: &str) -> String {
    line.chars()
        .map(|c| if c == '\t' { ' ' } else { c })
        .filter(|c| !c.is_control())
        .collect()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use kiln_graph::NodeId;
    use kiln_solver::Event;

    use super::super::testing::SharedBuf;
    use super::super::{Progress, ProgressMode};
    use super::*;

    /// What a terminal would finally show, roughly: escape sequences dropped.
    fn strip_ansi(text: &str) -> String {
        let mut out = String::new();
        let mut chars = text.chars().peekable();
        while let Some(c) = chars.next() {
            if c == '\x1b' {
                for d in chars.by_ref() {
                    if d.is_ascii_alphabetic() {
                        break;
                    }
                }
            } else if c != '\r' {
                out.push(c);
            }
        }
        out
    }

    #[test]
    fn running_steps_are_redrawn_and_finished_ones_stay() {
        let buf = SharedBuf::default();
        let p = Progress::with_writer(ProgressMode::Tty, Box::new(buf.clone()), false);
        p.describe(NodeId(0), "[build 1/2] RUN make");
        p.describe(NodeId(1), "[build 2/2] RUN false");
        p.event(&Event::Started { node: NodeId(0) });
        std::thread::sleep(MIN_REDRAW_INTERVAL);
        p.event(&Event::Log {
            node: NodeId(0),
            line: "cc -c\tmain.c\x1b[31m".into(),
        });
        let live = buf.text();
        assert!(live.contains("[+] Building"), "{live:?}");
        assert!(live.contains(" => => # cc -c main.c[31m"), "{live:?}");
        p.event(&Event::Finished {
            node: NodeId(0),
            elapsed: Duration::from_millis(2500),
        });
        p.event(&Event::Started { node: NodeId(1) });
        p.event(&Event::Failed {
            node: NodeId(1),
            elapsed: Duration::from_millis(100),
            message: "exit code: 1".into(),
        });
        p.finish();
        let text = buf.text();
        assert!(text.contains("\x1b["), "redraws use cursor movement");
        let shown = strip_ansi(&text);
        assert!(shown.contains(" => [build 1/2] RUN make"), "{shown}");
        assert!(shown.contains("2.5s\n"), "{shown}");
        assert!(shown.contains(" => ERROR [build 2/2] RUN false"), "{shown}");
        assert!(shown.contains("exit code: 1\n"), "{shown}");
        assert!(shown.trim_end().ends_with("(2/2) FINISHED"), "{shown}");
    }

    #[test]
    fn rows_fit_the_width() {
        let r = TtyRenderer::new(40);
        let row = r.row(&"x".repeat(100), "12.3s");
        assert!(row.chars().count() <= 40, "{row}");
        assert!(row.ends_with(" 12.3s"));
        assert_eq!(clip("abcdef", 5), "ab...");
    }
}
