//! Build progress on stderr, in the styles `--progress` names: `plain` (numbered steps,
//! one line per event, as BuildKit prints them), `tty` (the running steps redrawn live with
//! timers and their last log lines), `quiet` (only failures) and `rawjson` (one JSON
//! object per event). `auto` is `tty` on a terminal and `plain` elsewhere.
//!
//! [`Progress`] is shared by the solver's worker threads: every method takes `&self` and
//! writes whole lines under one lock, so output never interleaves mid-line.

mod plain;
mod rawjson;
mod tty;

use std::collections::{HashMap, VecDeque};
use std::io::{self, IsTerminal, Write};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use kiln_graph::NodeId;
use kiln_solver::Event;

/// Log lines kept per step: what `tty` shows under a running step and what a failure
/// repeats.
const KEPT_LOG_LINES: usize = 10;

/// The `--progress` value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ProgressMode {
    #[default]
    Auto,
    Tty,
    Plain,
    Quiet,
    RawJson,
}

impl ProgressMode {
    /// Parses a `--progress` value; `none` is accepted as `quiet`.
    pub fn parse(text: &str) -> Result<Self, String> {
        match text.to_ascii_lowercase().as_str() {
            "auto" | "" => Ok(Self::Auto),
            "tty" => Ok(Self::Tty),
            "plain" => Ok(Self::Plain),
            "quiet" | "none" => Ok(Self::Quiet),
            "rawjson" => Ok(Self::RawJson),
            _ => Err(format!(
                "invalid progress mode {text:?} (expected auto, tty, plain, quiet or rawjson)"
            )),
        }
    }

    /// `auto` made concrete for an output that is (or is not) a terminal.
    fn resolve(self, terminal: bool) -> Self {
        match self {
            Self::Auto if terminal && std::env::var("TERM").map_or(true, |t| t != "dumb") => {
                Self::Tty
            }
            Self::Auto => Self::Plain,
            other => other,
        }
    }
}

impl std::str::FromStr for ProgressMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Self::parse(s)
    }
}

/// Which step a vertex stands for: a graph node, or work outside the graph (exporting).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Key {
    Node(NodeId),
    Task(usize),
}

/// A handle on a step that is not a graph node (`exporting to image`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TaskId(usize);

#[derive(Debug, Clone, PartialEq)]
enum Status {
    Running,
    Done(Duration),
    Cached,
    Failed(Duration),
    Canceled,
}

/// A step that has started: numbered in start order from 1.
#[derive(Debug, Clone)]
struct Vertex {
    number: usize,
    node: Option<NodeId>,
    description: String,
    started: Instant,
    status: Status,
    logs: VecDeque<String>,
}

/// What just happened to a vertex, handed to the renderer.
#[derive(Debug, Clone, Copy)]
enum Change<'a> {
    Started,
    Log(&'a str, Duration),
    Done(Duration),
    Cached(Option<&'a str>),
    Failed(Duration, &'a str),
    Canceled,
}

/// A rendering style. Renderers append to `out` and never write to the terminal
/// themselves, so each change reaches it in one write.
trait Renderer: Send {
    fn change(&mut self, out: &mut String, vertices: &[Vertex], index: usize, change: Change<'_>);
    /// A step that never started was skipped.
    fn skipped(&mut self, _out: &mut String, _node: NodeId, _description: &str) {}
    /// Called a few times a second while the build runs.
    fn tick(&mut self, _out: &mut String, _vertices: &[Vertex], _elapsed: Duration) {}
    fn finish(&mut self, _out: &mut String, _vertices: &[Vertex], _elapsed: Duration) {}
}

struct State {
    out: Box<dyn Write + Send>,
    renderer: Box<dyn Renderer>,
    vertices: Vec<Vertex>,
    by_key: HashMap<Key, usize>,
    descriptions: HashMap<NodeId, String>,
    next_task: usize,
    started: Instant,
    finished: bool,
}

struct Shared {
    state: Mutex<State>,
    /// Wakes the tty ticker early when the build finishes.
    stop: Condvar,
}

/// Thread-safe progress reporter; see the module documentation.
pub struct Progress {
    shared: Arc<Shared>,
    ticker: Mutex<Option<JoinHandle<()>>>,
}

impl Progress {
    /// Progress on stderr.
    pub fn new(mode: ProgressMode) -> Self {
        let terminal = io::stderr().is_terminal();
        Self::with_writer(mode, Box::new(io::stderr()), terminal)
    }

    /// Progress on any writer; `terminal` says whether `auto` may draw live.
    pub fn with_writer(mode: ProgressMode, out: Box<dyn Write + Send>, terminal: bool) -> Self {
        let mode = mode.resolve(terminal);
        let renderer: Box<dyn Renderer> = match mode {
            ProgressMode::Tty => Box::new(tty::TtyRenderer::new(tty::terminal_width())),
            ProgressMode::Quiet => Box::new(plain::PlainRenderer::quiet()),
            ProgressMode::RawJson => Box::new(rawjson::RawJsonRenderer),
            ProgressMode::Plain | ProgressMode::Auto => Box::new(plain::PlainRenderer::new()),
        };
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                out,
                renderer,
                vertices: Vec::new(),
                by_key: HashMap::new(),
                descriptions: HashMap::new(),
                next_task: 0,
                started: Instant::now(),
                finished: false,
            }),
            stop: Condvar::new(),
        });
        let ticker = (mode == ProgressMode::Tty).then(|| {
            let shared = shared.clone();
            std::thread::spawn(move || tick_until_finished(&shared))
        });
        Progress {
            shared,
            ticker: Mutex::new(ticker),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A renderer that panicked mid-line leaves nothing worth protecting.
        self.shared.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Names `node` for when it starts (`[build 2/5] RUN make`).
    pub fn describe(&self, node: NodeId, description: &str) {
        self.state()
            .descriptions
            .insert(node, description.to_owned());
    }

    /// Starts the step for `node` now; a later `Started` event for it changes nothing.
    #[allow(
        dead_code,
        reason = "API for the build driver; not every caller uses it yet"
    )]
    pub fn start_vertex(&self, node: NodeId, description: &str) {
        let mut state = self.state();
        state.start(Key::Node(node), Some(node), description);
    }

    /// Reports a solver event.
    pub fn event(&self, event: &Event) {
        let mut state = self.state();
        match event {
            Event::Started { node } => {
                let description = state.description_of(*node);
                state.start(Key::Node(*node), Some(*node), &description);
            }
            Event::Log { node, line } => {
                let index = state.ensure_started(*node);
                state.log(index, line);
            }
            Event::Finished { node, elapsed } => {
                let index = state.ensure_started(*node);
                state.set_status(index, Status::Done(*elapsed), Change::Done(*elapsed));
            }
            Event::Failed {
                node,
                elapsed,
                message,
            } => {
                let index = state.ensure_started(*node);
                state.set_status(
                    index,
                    Status::Failed(*elapsed),
                    Change::Failed(*elapsed, message),
                );
            }
            Event::Cached { node } => {
                let index = match state.by_key.get(&Key::Node(*node)).copied() {
                    Some(index) => index,
                    None => {
                        let description = state.description_of(*node);
                        state.insert(Key::Node(*node), Some(*node), &description)
                    }
                };
                state.set_status(index, Status::Cached, Change::Cached(None));
            }
            Event::Skipped { node } => match state.by_key.get(&Key::Node(*node)).copied() {
                Some(index) => state.set_status(index, Status::Canceled, Change::Canceled),
                None => {
                    let description = state.description_of(*node);
                    let mut out = String::new();
                    state.renderer.skipped(&mut out, *node, &description);
                    state.write(&out);
                }
            },
        }
    }

    /// Reports that `node`'s result came from the cache; `reason` says why it matched.
    #[allow(
        dead_code,
        reason = "API for the build driver; not every caller uses it yet"
    )]
    pub fn cached(&self, node: NodeId, description: &str, reason: Option<&str>) {
        let mut state = self.state();
        let index = match state.by_key.get(&Key::Node(node)).copied() {
            Some(index) => index,
            None => state.insert(Key::Node(node), Some(node), description),
        };
        state.set_status(index, Status::Cached, Change::Cached(reason));
    }

    /// Starts a step that is not a graph node.
    #[allow(
        dead_code,
        reason = "API for the build driver; not every caller uses it yet"
    )]
    pub fn start_task(&self, description: &str) -> TaskId {
        let mut state = self.state();
        let id = state.next_task;
        state.next_task += 1;
        state.start(Key::Task(id), None, description);
        TaskId(id)
    }

    #[allow(
        dead_code,
        reason = "API for the build driver; not every caller uses it yet"
    )]
    pub fn task_log(&self, task: TaskId, line: &str) {
        let mut state = self.state();
        if let Some(index) = state.by_key.get(&Key::Task(task.0)).copied() {
            state.log(index, line);
        }
    }

    /// Ends a task, successfully (`None`) or with an error message.
    #[allow(
        dead_code,
        reason = "API for the build driver; not every caller uses it yet"
    )]
    pub fn task_done(&self, task: TaskId, error: Option<&str>) {
        let mut state = self.state();
        let Some(index) = state.by_key.get(&Key::Task(task.0)).copied() else {
            return;
        };
        let elapsed = state.vertices[index].started.elapsed();
        match error {
            None => state.set_status(index, Status::Done(elapsed), Change::Done(elapsed)),
            Some(message) => state.set_status(
                index,
                Status::Failed(elapsed),
                Change::Failed(elapsed, message),
            ),
        }
    }

    /// Ends the display (tty: the final summary); later calls do nothing.
    pub fn finish(&self) {
        {
            let mut state = self.state();
            if !state.finished {
                state.finished = true;
                let elapsed = state.started.elapsed();
                let mut out = String::new();
                let State {
                    renderer, vertices, ..
                } = &mut *state;
                renderer.finish(&mut out, vertices, elapsed);
                state.write(&out);
            }
        }
        self.shared.stop.notify_all();
        let handle = self.ticker.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(handle) = handle {
            let _ = handle.join();
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.finish();
    }
}

fn tick_until_finished(shared: &Shared) {
    let mut state = shared.state.lock().unwrap_or_else(|p| p.into_inner());
    loop {
        let (next, _) = shared
            .stop
            .wait_timeout(state, Duration::from_millis(100))
            .unwrap_or_else(|p| p.into_inner());
        state = next;
        if state.finished {
            return;
        }
        let elapsed = state.started.elapsed();
        let mut out = String::new();
        let State {
            renderer, vertices, ..
        } = &mut *state;
        renderer.tick(&mut out, vertices, elapsed);
        state.write(&out);
    }
}

impl State {
    fn description_of(&self, node: NodeId) -> String {
        self.descriptions
            .get(&node)
            .cloned()
            .unwrap_or_else(|| format!("step {}", node.0))
    }

    fn insert(&mut self, key: Key, node: Option<NodeId>, description: &str) -> usize {
        let index = self.vertices.len();
        self.vertices.push(Vertex {
            number: index + 1,
            node,
            description: description.to_owned(),
            started: Instant::now(),
            status: Status::Running,
            logs: VecDeque::new(),
        });
        self.by_key.insert(key, index);
        index
    }

    fn start(&mut self, key: Key, node: Option<NodeId>, description: &str) -> usize {
        if let Some(index) = self.by_key.get(&key) {
            return *index;
        }
        let index = self.insert(key, node, description);
        self.render(index, Change::Started);
        index
    }

    /// Events for a node that never reported `Started` still get a numbered step.
    fn ensure_started(&mut self, node: NodeId) -> usize {
        let description = self.description_of(node);
        self.start(Key::Node(node), Some(node), &description)
    }

    fn log(&mut self, index: usize, line: &str) {
        let line = line.trim_end_matches(['\n', '\r']);
        let at = self.vertices[index].started.elapsed();
        let logs = &mut self.vertices[index].logs;
        if logs.len() == KEPT_LOG_LINES {
            logs.pop_front();
        }
        logs.push_back(line.to_owned());
        self.render(index, Change::Log(line, at));
    }

    fn set_status(&mut self, index: usize, status: Status, change: Change<'_>) {
        if self.vertices[index].status != Status::Running {
            return;
        }
        self.vertices[index].status = status;
        self.render(index, change);
    }

    fn render(&mut self, index: usize, change: Change<'_>) {
        let mut out = String::new();
        self.renderer
            .change(&mut out, &self.vertices, index, change);
        self.write(&out);
    }

    fn write(&mut self, text: &str) {
        if text.is_empty() {
            return;
        }
        // A closed stderr must not fail the build.
        let _ = self.out.write_all(text.as_bytes());
        let _ = self.out.flush();
    }
}

#[cfg(test)]
pub(crate) mod testing;
#[cfg(test)]
mod tests;
