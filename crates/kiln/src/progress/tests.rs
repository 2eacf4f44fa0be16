use super::testing::SharedBuf;
use super::*;

#[test]
fn parses_modes() {
    assert_eq!(ProgressMode::parse("plain"), Ok(ProgressMode::Plain));
    assert_eq!(ProgressMode::parse("RAWJSON"), Ok(ProgressMode::RawJson));
    assert_eq!(ProgressMode::parse("none"), Ok(ProgressMode::Quiet));
    assert!(ProgressMode::parse("fancy").is_err());
    assert_eq!(ProgressMode::Auto.resolve(false), ProgressMode::Plain);
    assert_eq!(ProgressMode::Tty.resolve(false), ProgressMode::Tty);
}

#[test]
fn many_threads_never_split_a_line() {
    let buf = SharedBuf::default();
    let progress = Progress::with_writer(ProgressMode::Plain, Box::new(buf.clone()), false);
    std::thread::scope(|s| {
        for t in 0..4 {
            let progress = &progress;
            s.spawn(move || {
                let node = NodeId(t);
                progress.event(&Event::Started { node });
                for i in 0..200 {
                    progress.event(&Event::Log {
                        node,
                        line: format!("thread {t} line {i} {}", "x".repeat(50)),
                    });
                }
                progress.event(&Event::Finished {
                    node,
                    elapsed: Duration::from_millis(5),
                });
            });
        }
    });
    progress.finish();
    let text = buf.text();
    let logs = text.lines().filter(|l| l.contains(" line ")).count();
    assert_eq!(logs, 800);
    for line in text.lines().filter(|l| !l.is_empty()) {
        assert!(line.starts_with('#'), "{line:?}");
        if line.contains(" line ") {
            assert!(line.ends_with(&"x".repeat(50)), "{line:?}");
        }
    }
    assert_eq!(text.matches("DONE 0.0s").count(), 4);
}
