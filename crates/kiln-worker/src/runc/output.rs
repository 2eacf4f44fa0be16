//! Turning a container's output pipes into lines for progress reporting.

use std::io::Read;
use std::process::ExitStatus;
use std::sync::mpsc::Sender;

/// Which output stream a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

pub(crate) enum Event {
    Line(Stream, String),
    Closed,
    Exited(std::io::Result<ExitStatus>),
}

/// A line longer than this is passed on in pieces, so output without newlines cannot
/// grow without bound.
const MAX_LINE: usize = 16 * 1024;

pub(crate) fn spawn_reader(
    mut pipe: impl Read + Send + 'static,
    stream: Stream,
    tx: Sender<Event>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut pending: Vec<u8> = Vec::new();
        let mut buf = [0u8; 8192];
        loop {
            let n = match pipe.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            pending.extend_from_slice(&buf[..n]);
            while let Some(pos) = pending.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = pending.drain(..=pos).collect();
                send_line(&tx, stream, &line[..line.len() - 1]);
            }
            if pending.len() >= MAX_LINE {
                send_line(&tx, stream, &pending);
                pending.clear();
            }
        }
        if !pending.is_empty() {
            send_line(&tx, stream, &pending);
        }
        let _ = tx.send(Event::Closed);
    })
}

fn send_line(tx: &Sender<Event>, stream: Stream, line: &[u8]) {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let _ = tx.send(Event::Line(
        stream,
        String::from_utf8_lossy(line).into_owned(),
    ));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_lines_and_flushes_the_unterminated_rest() {
        let (tx, rx) = std::sync::mpsc::channel();
        let data: &[u8] = b"one\r\ntwo\n\nlast";
        spawn_reader(data, Stream::Stderr, tx).join().unwrap();
        let lines: Vec<String> = rx
            .iter()
            .filter_map(|e| match e {
                Event::Line(Stream::Stderr, l) => Some(l),
                _ => None,
            })
            .collect();
        assert_eq!(lines, ["one", "two", "", "last"]);
    }
}
