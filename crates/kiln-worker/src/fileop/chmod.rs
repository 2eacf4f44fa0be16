//! `--chmod` values: an octal mode that replaces permissions, or a symbolic one
//! (`u+x,go-w,a=rX`) applied to each copied entry's own mode, as chmod(1) does.

use kiln_graph::ChmodSpec;

use super::error::FileOpError;

const USER: u32 = 0o4700;
const GROUP: u32 = 0o2070;
const OTHER: u32 = 0o1007;

/// A parsed `--chmod`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Chmod {
    Octal(u32),
    Symbolic(Vec<Clause>),
}

/// One comma-separated clause: who it applies to and its operations, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Clause {
    who: u32,
    actions: Vec<(Op, Perms)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Add,
    Remove,
    Set,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Perms {
    /// Letters from `rwxXst`, as flags.
    Letters {
        read: bool,
        write: bool,
        exec: bool,
        exec_if_dir_or_exec: bool,
        set_id: bool,
        sticky: bool,
    },
    /// `u`, `g` or `o` on the right: copy that class's current bits.
    CopyFrom(u32),
}

impl Chmod {
    pub fn parse(spec: &ChmodSpec) -> Result<Self, FileOpError> {
        match spec {
            ChmodSpec::Octal(mode) if *mode <= 0o7777 => Ok(Chmod::Octal(*mode)),
            ChmodSpec::Octal(mode) => Err(FileOpError::BadChmod {
                spec: format!("{mode:o}"),
                problem: "more than 4 octal digits".into(),
            }),
            ChmodSpec::Symbolic(text) => text
                .split(',')
                .map(parse_clause)
                .collect::<Result<Vec<_>, String>>()
                .map(Chmod::Symbolic)
                .map_err(|problem| FileOpError::BadChmod {
                    spec: text.clone(),
                    problem,
                }),
        }
    }

    /// The permission bits (`0o7777` part) an entry with `mode` gets.
    pub fn apply(&self, mode: u32, is_dir: bool) -> u32 {
        match self {
            Chmod::Octal(octal) => *octal,
            Chmod::Symbolic(clauses) => clauses.iter().fold(mode & 0o7777, |mode, clause| {
                clause.actions.iter().fold(mode, |mode, (op, perms)| {
                    let bits = perms.bits(mode, is_dir) & clause.who;
                    match op {
                        Op::Add => mode | bits,
                        Op::Remove => mode & !bits,
                        Op::Set => (mode & !clause.who) | bits,
                    }
                })
            }),
        }
    }
}

impl Perms {
    /// The bits these permissions name for every class, given the current mode.
    fn bits(self, mode: u32, is_dir: bool) -> u32 {
        match self {
            Perms::Letters {
                read,
                write,
                exec,
                exec_if_dir_or_exec,
                set_id,
                sticky,
            } => {
                let exec = exec || (exec_if_dir_or_exec && (is_dir || mode & 0o111 != 0));
                let flag = |on: bool, bits: u32| if on { bits } else { 0 };
                flag(read, 0o444)
                    | flag(write, 0o222)
                    | flag(exec, 0o111)
                    | flag(set_id, 0o6000)
                    | flag(sticky, 0o1000)
            }
            Perms::CopyFrom(class) => {
                let triple = match class {
                    USER => (mode >> 6) & 7,
                    GROUP => (mode >> 3) & 7,
                    _ => mode & 7,
                };
                triple * 0o111
            }
        }
    }
}

fn parse_clause(text: &str) -> Result<Clause, String> {
    let mut chars = text.chars().peekable();
    let mut who = 0;
    while let Some(class) = chars.peek().and_then(|c| class_bits(*c, true)) {
        who |= class;
        chars.next();
    }
    if who == 0 {
        who = USER | GROUP | OTHER;
    }
    let mut actions = Vec::new();
    while let Some(op_char) = chars.next() {
        let op = match op_char {
            '+' => Op::Add,
            '-' => Op::Remove,
            '=' => Op::Set,
            other => return Err(format!("unexpected {other:?} in {text:?}")),
        };
        let copy_from = chars.peek().and_then(|c| class_bits(*c, false));
        let perms = if let Some(class) = copy_from {
            chars.next();
            Perms::CopyFrom(class)
        } else {
            let mut letters = [false; 6];
            while let Some(index) = chars.peek().and_then(|c| "rwxXst".find(*c)) {
                letters[index] = true;
                chars.next();
            }
            let [read, write, exec, exec_if_dir_or_exec, set_id, sticky] = letters;
            Perms::Letters {
                read,
                write,
                exec,
                exec_if_dir_or_exec,
                set_id,
                sticky,
            }
        };
        actions.push((op, perms));
    }
    if actions.is_empty() {
        return Err(format!("missing +, - or = in {text:?}"));
    }
    Ok(Clause { who, actions })
}

fn class_bits(c: char, allow_all: bool) -> Option<u32> {
    match c {
        'u' => Some(USER),
        'g' => Some(GROUP),
        'o' => Some(OTHER),
        'a' if allow_all => Some(USER | GROUP | OTHER),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn symbolic(text: &str) -> Chmod {
        Chmod::parse(&ChmodSpec::Symbolic(text.into())).unwrap()
    }

    #[test]
    fn symbolic_modes_change_existing_bits() {
        assert_eq!(symbolic("u+x,go-w").apply(0o666, false), 0o744);
        assert_eq!(symbolic("a=rX").apply(0o640, false), 0o444);
        assert_eq!(symbolic("a=rX").apply(0o700, false), 0o555);
        assert_eq!(symbolic("a=rX").apply(0o600, true), 0o555);
        assert_eq!(symbolic("+x").apply(0o644, false), 0o755);
        assert_eq!(symbolic("g=u").apply(0o750, false), 0o770);
        assert_eq!(symbolic("o=").apply(0o777, false), 0o770);
        assert_eq!(symbolic("u+s,+t").apply(0o755, false), 0o5755);
        assert_eq!(symbolic("u=rw-w+x").apply(0o000, false), 0o500);
    }

    #[test]
    fn octal_replaces_and_bad_specs_fail() {
        assert_eq!(
            Chmod::parse(&ChmodSpec::Octal(0o640))
                .unwrap()
                .apply(0o777, true),
            0o640
        );
        for bad in ["", "u", "u+q", "x+r", "u+x,"] {
            assert!(
                Chmod::parse(&ChmodSpec::Symbolic(bad.into())).is_err(),
                "{bad:?}"
            );
        }
        assert!(Chmod::parse(&ChmodSpec::Octal(0o17777)).is_err());
    }
}
