//! Parallel execution of a graph's required nodes.

use std::collections::HashMap;
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use kiln_graph::{Graph, Node, NodeId};

/// Runs one op once its inputs are done.
pub trait Executor: Sync {
    type Output: Clone + Send + Sync;
    type Error: std::fmt::Display + Send;

    /// `inputs` are the outputs of `node.inputs`, in the same order.
    fn execute(
        &self,
        id: NodeId,
        node: &Node,
        inputs: &[Self::Output],
        log: &dyn Fn(&str),
    ) -> Result<Self::Output, Self::Error>;

    /// Whether `output` was answered from the cache rather than computed.
    fn is_cached(_output: &Self::Output) -> bool {
        false
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    Started {
        node: NodeId,
    },
    Log {
        node: NodeId,
        line: String,
    },
    Finished {
        node: NodeId,
        elapsed: Duration,
    },
    /// Answered from the cache without running.
    Cached {
        node: NodeId,
    },
    Failed {
        node: NodeId,
        elapsed: Duration,
        message: String,
    },
    /// Not run because an input failed or the solve was stopped.
    Skipped {
        node: NodeId,
    },
}

pub struct SolveOptions<'a> {
    pub max_parallelism: usize,
    /// Stop starting ops after the first failure (buildx's default).
    pub fail_fast: bool,
    /// Asked before each op starts; `true` (Ctrl-C) stops starting ops.
    pub cancelled: Option<&'a (dyn Fn() -> bool + Sync)>,
}

impl Default for SolveOptions<'_> {
    fn default() -> Self {
        Self {
            max_parallelism: std::thread::available_parallelism().map_or(1, |n| n.get()),
            fail_fast: true,
            cancelled: None,
        }
    }
}

#[derive(Debug)]
pub struct SolveOutcome<O, E> {
    pub outputs: HashMap<NodeId, O>,
    pub failures: Vec<(NodeId, E)>,
    pub skipped: Vec<NodeId>,
}

impl<O, E> SolveOutcome<O, E> {
    pub fn succeeded(&self) -> bool {
        self.failures.is_empty() && self.skipped.is_empty()
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    Waiting,
    Running,
    Done,
    Failed,
    Skipped,
}

struct Shared<O, E> {
    state: HashMap<NodeId, State>,
    outputs: HashMap<NodeId, O>,
    failures: Vec<(NodeId, E)>,
    running: usize,
    stop: bool,
}

/// Runs every node `roots` need and returns what each produced.
pub fn solve<X: Executor>(
    graph: &Graph,
    roots: &[NodeId],
    executor: &X,
    options: &SolveOptions<'_>,
    events: &(dyn Fn(Event) + Sync),
) -> SolveOutcome<X::Output, X::Error> {
    let required = graph.required(roots);
    let shared = Mutex::new(Shared {
        state: required.iter().map(|id| (*id, State::Waiting)).collect(),
        outputs: HashMap::new(),
        failures: Vec::new(),
        running: 0,
        stop: false,
    });
    let wake = Condvar::new();
    let workers = options.max_parallelism.max(1).min(required.len().max(1));
    let cancelled = || options.cancelled.is_some_and(|c| c());

    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                loop {
                    let Some((id, node, inputs)) =
                        next_ready(graph, &required, &shared, &wake, &cancelled, events)
                    else {
                        return;
                    };
                    events(Event::Started { node: id });
                    let started = Instant::now();
                    let log = |line: &str| {
                        events(Event::Log {
                            node: id,
                            line: line.to_string(),
                        })
                    };
                    let result = executor.execute(id, node, &inputs, &log);
                    let elapsed = started.elapsed();
                    let mut guard = shared.lock().unwrap_or_else(|p| p.into_inner());
                    guard.running -= 1;
                    match result {
                        Ok(output) => {
                            guard.state.insert(id, State::Done);
                            if X::is_cached(&output) {
                                events(Event::Cached { node: id });
                            } else {
                                events(Event::Finished { node: id, elapsed });
                            }
                            guard.outputs.insert(id, output);
                        }
                        Err(error) => {
                            guard.state.insert(id, State::Failed);
                            events(Event::Failed {
                                node: id,
                                elapsed,
                                message: error.to_string(),
                            });
                            guard.failures.push((id, error));
                            if options.fail_fast {
                                guard.stop = true;
                            }
                        }
                    }
                    drop(guard);
                    wake.notify_all();
                }
            });
        }
    });

    let shared = shared.into_inner().unwrap_or_else(|p| p.into_inner());
    let skipped: Vec<NodeId> = required
        .iter()
        .filter(|id| matches!(shared.state.get(id), Some(State::Skipped | State::Waiting)))
        .copied()
        .collect();
    SolveOutcome {
        outputs: shared.outputs,
        failures: shared.failures,
        skipped,
    }
}

type Ready<'g, O> = (NodeId, &'g Node, Vec<O>);

/// Blocks until a node can run (and claims it) or nothing more will ever run.
fn next_ready<'g, O: Clone, E>(
    graph: &'g Graph,
    required: &[NodeId],
    shared: &Mutex<Shared<O, E>>,
    wake: &Condvar,
    cancelled: &dyn Fn() -> bool,
    events: &(dyn Fn(Event) + Sync),
) -> Option<Ready<'g, O>> {
    let mut guard = shared.lock().unwrap_or_else(|p| p.into_inner());
    loop {
        if cancelled() {
            guard.stop = true;
        }
        let mut progressed = false;
        let mut waiting_any = false;
        for &id in required {
            if guard.state.get(&id) != Some(&State::Waiting) {
                continue;
            }
            let node = graph.node(id)?;
            let input_states: Vec<State> = node
                .inputs
                .iter()
                .map(|i| guard.state.get(i).copied().unwrap_or(State::Skipped))
                .collect();
            if guard.stop
                || input_states
                    .iter()
                    .any(|s| matches!(s, State::Failed | State::Skipped))
            {
                guard.state.insert(id, State::Skipped);
                events(Event::Skipped { node: id });
                progressed = true;
                continue;
            }
            if input_states.iter().all(|s| *s == State::Done) {
                let inputs: Vec<O> = node
                    .inputs
                    .iter()
                    .filter_map(|i| guard.outputs.get(i).cloned())
                    .collect();
                guard.state.insert(id, State::Running);
                guard.running += 1;
                return Some((id, node, inputs));
            }
            waiting_any = true;
        }
        if progressed {
            wake.notify_all();
            continue;
        }
        if !waiting_any {
            return None;
        }
        // Something is waiting on a running op: sleep until a worker finishes one.
        guard = wake
            .wait_timeout(guard, Duration::from_millis(200))
            .map(|(g, _)| g)
            .unwrap_or_else(|p| p.into_inner().0);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

    use kiln_graph::{ExecOp, NetworkMode, Op, SecurityMode};

    use super::*;

    fn run_op(name: &str) -> Op {
        Op::Exec(ExecOp {
            args: vec![name.to_string()],
            env: vec![],
            cwd: "/".into(),
            user: "root".into(),
            network: NetworkMode::None,
            security: SecurityMode::Sandbox,
            mounts: vec![],
        })
    }

    /// Executes by concatenating input outputs with the op's name; sleeps to expose
    /// parallelism; fails on ops named "fail".
    struct Concat {
        running: AtomicUsize,
        peak: AtomicUsize,
        calls: AtomicUsize,
        sleep: Duration,
    }

    impl Concat {
        fn new(sleep_ms: u64) -> Self {
            Self {
                running: AtomicUsize::new(0),
                peak: AtomicUsize::new(0),
                calls: AtomicUsize::new(0),
                sleep: Duration::from_millis(sleep_ms),
            }
        }
    }

    impl Executor for Concat {
        type Output = String;
        type Error = String;
        fn execute(
            &self,
            _: NodeId,
            node: &Node,
            inputs: &[String],
            log: &dyn Fn(&str),
        ) -> Result<String, String> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
            self.peak.fetch_max(now, Ordering::SeqCst);
            std::thread::sleep(self.sleep);
            self.running.fetch_sub(1, Ordering::SeqCst);
            let Op::Exec(exec) = &node.op else {
                return Ok(String::new());
            };
            let name = exec.args.join(" ");
            log(&format!("running {name}"));
            if name == "fail" {
                return Err("boom".into());
            }
            Ok(format!("{}{}", inputs.join("+"), name))
        }
    }

    fn fan_out(width: usize) -> (Graph, NodeId, Vec<NodeId>) {
        let mut g = Graph::new();
        let base = g.add(run_op("base"), vec![], "").unwrap();
        let leaves: Vec<NodeId> = (0..width)
            .map(|i| g.add(run_op(&format!("t{i}")), vec![base], "").unwrap())
            .collect();
        let collect = g.add(run_op("collect"), leaves.clone(), "").unwrap();
        (g, collect, leaves)
    }

    #[test]
    fn runs_independent_ops_in_parallel_up_to_the_bound() {
        let (g, collect, _) = fan_out(8);
        let x = Concat::new(40);
        let options = SolveOptions {
            max_parallelism: 4,
            ..Default::default()
        };
        let outcome = solve(&g, &[collect], &x, &options, &|_| {});
        assert!(outcome.succeeded());
        assert_eq!(x.calls.load(Ordering::SeqCst), 10);
        assert_eq!(x.peak.load(Ordering::SeqCst), 4);
        let out = &outcome.outputs[&collect];
        assert!(
            out.starts_with("baset0+baset1+") && out.ends_with("collect"),
            "{out}"
        );
    }

    #[test]
    fn fail_fast_skips_dependents_and_unstarted_ops() {
        let mut g = Graph::new();
        let base = g.add(run_op("base"), vec![], "").unwrap();
        let bad = g.add(run_op("fail"), vec![base], "").unwrap();
        let after = g.add(run_op("after"), vec![bad], "").unwrap();
        let x = Concat::new(1);
        let events = Mutex::new(Vec::new());
        let outcome = solve(&g, &[after], &x, &SolveOptions::default(), &|e| {
            events.lock().unwrap().push(e)
        });
        assert_eq!(outcome.failures.len(), 1);
        assert_eq!(outcome.skipped, vec![after]);
        let events = events.into_inner().unwrap();
        assert!(events.contains(&Event::Skipped { node: after }));
        assert!(events.iter().any(|e| matches!(e, Event::Failed { node, message, .. } if *node == bad && message == "boom")));
        assert!(events.contains(&Event::Log {
            node: base,
            line: "running base".into()
        }));
    }

    #[test]
    fn keep_going_finishes_independent_branches() {
        let mut g = Graph::new();
        let base = g.add(run_op("base"), vec![], "").unwrap();
        let bad = g.add(run_op("fail"), vec![base], "").unwrap();
        let good = g.add(run_op("good"), vec![base], "").unwrap();
        let x = Concat::new(20);
        let options = SolveOptions {
            max_parallelism: 1,
            fail_fast: false,
            cancelled: None,
        };
        let outcome = solve(&g, &[bad, good], &x, &options, &|_| {});
        assert_eq!(outcome.failures.len(), 1);
        assert_eq!(outcome.outputs[&good], "basegood");
    }

    #[test]
    fn each_op_runs_once_however_many_roots_need_it() {
        let (g, collect, leaves) = fan_out(3);
        let x = Concat::new(1);
        let mut roots = leaves.clone();
        roots.push(collect);
        let outcome = solve(&g, &roots, &x, &SolveOptions::default(), &|_| {});
        assert!(outcome.succeeded());
        assert_eq!(x.calls.load(Ordering::SeqCst), 5);
    }

    #[test]
    fn cancel_stops_new_work() {
        let (g, collect, _) = fan_out(4);
        let x = Concat::new(1);
        let cancel = AtomicBool::new(true);
        let stop = || cancel.load(Ordering::SeqCst);
        let options = SolveOptions {
            max_parallelism: 2,
            fail_fast: true,
            cancelled: Some(&stop),
        };
        let outcome = solve(&g, &[collect], &x, &options, &|_| {});
        assert_eq!(x.calls.load(Ordering::SeqCst), 0);
        assert_eq!(outcome.skipped.len(), 6);
    }
}
