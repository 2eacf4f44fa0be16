//! Raw AST node → typed instruction, with BuildKit's argument and flag rules.

use super::flags::{FlagKind, Flags};
use super::values::{
    parse_chmod, parse_go_duration, parse_port, validate_checksum, validate_signal,
};
use super::*;
use crate::dockerfile::error::InstrError;
use crate::dockerfile::parser::Node;

use FlagKind::{Bool, List, Text};

const RUN_FLAGS: &[(&str, FlagKind)] = &[("mount", List), ("network", Text), ("security", Text)];
const COPY_FLAGS: &[(&str, FlagKind)] = &[
    ("from", Text),
    ("chown", Text),
    ("chmod", Text),
    ("link", Bool),
    ("parents", Bool),
    ("exclude", List),
];
const ADD_FLAGS: &[(&str, FlagKind)] = &[
    ("chown", Text),
    ("chmod", Text),
    ("link", Bool),
    ("exclude", List),
    ("checksum", Text),
    ("keep-git-dir", Bool),
    ("unpack", Bool),
];
const HEALTH_FLAGS: &[(&str, FlagKind)] = &[
    ("interval", Text),
    ("timeout", Text),
    ("start-period", Text),
    ("start-interval", Text),
    ("retries", Text),
];

/// Types one node; it is consumed so its text moves into the instruction.
pub(crate) fn from_node(node: Node) -> Result<Instruction, InstrError> {
    let kind = typed_kind(&node)?;
    Ok(Instruction {
        kind,
        keyword: node.keyword,
        original: node.original,
        start_line: node.start_line,
        end_line: node.end_line,
        comments: node.comments,
    })
}

fn typed_kind(node: &Node) -> Result<InstructionKind, InstrError> {
    let command = node.command();
    let upper = command.to_ascii_uppercase();
    let no_flags = || Flags::parse(&upper, &node.flags, &[]);
    let args = &node.args;
    let kind = match command.as_str() {
        "from" => InstructionKind::From(parse_from(node)?),
        "run" => InstructionKind::Run(parse_run(node)?),
        "cmd" => {
            no_flags()?;
            InstructionKind::Cmd(command_line(node))
        }
        "entrypoint" => {
            no_flags()?;
            InstructionKind::Entrypoint(command_line(node))
        }
        "label" | "env" => {
            no_flags()?;
            let pairs = key_values(node, &upper)?;
            if command == "env" {
                InstructionKind::Env(pairs)
            } else {
                InstructionKind::Label(pairs)
            }
        }
        "maintainer" => {
            no_flags()?;
            InstructionKind::Maintainer(exactly_one(node, &upper)?)
        }
        "expose" => {
            no_flags()?;
            if args.is_empty() {
                return Err(at_least_one(&upper));
            }
            for port in args.iter().filter(|p| !p.contains('$')) {
                parse_port(port).map_err(|e| InstrError::new(e).at(port.clone()))?;
            }
            InstructionKind::Expose(args.clone())
        }
        "add" => InstructionKind::Add(parse_file_copy(node, "ADD", ADD_FLAGS)?),
        "copy" => InstructionKind::Copy(parse_file_copy(node, "COPY", COPY_FLAGS)?),
        "volume" => {
            no_flags()?;
            if args.is_empty() {
                return Err(at_least_one(&upper));
            }
            if args.iter().any(|v| v.trim().is_empty()) {
                return Err(InstrError::new(
                    "VOLUME specified can not be an empty string",
                ));
            }
            InstructionKind::Volume(args.clone())
        }
        "user" => {
            no_flags()?;
            InstructionKind::User(exactly_one(node, &upper)?)
        }
        "workdir" => {
            no_flags()?;
            InstructionKind::Workdir(exactly_one(node, &upper)?)
        }
        "arg" => {
            no_flags()?;
            InstructionKind::Arg(parse_arg(node)?)
        }
        "onbuild" => {
            no_flags()?;
            InstructionKind::Onbuild(parse_onbuild(node)?)
        }
        "stopsignal" => {
            no_flags()?;
            let signal = exactly_one(node, &upper)?;
            if !signal.contains('$') {
                validate_signal(&signal).map_err(|e| {
                    InstrError::new(e)
                        .at(signal.clone())
                        .hint("use a name like SIGTERM or a number like 15")
                })?;
            }
            InstructionKind::StopSignal(signal)
        }
        "healthcheck" => InstructionKind::Healthcheck(parse_healthcheck(node)?),
        "shell" => {
            no_flags()?;
            if !node.json {
                return Err(
                    InstrError::new("SHELL requires the arguments to be in JSON form")
                        .hint(r#"write it as SHELL ["executable", "parameters"]"#),
                );
            }
            if args.is_empty() {
                return Err(at_least_one(&upper));
            }
            InstructionKind::Shell(args.clone())
        }
        _ => {
            let mut err = InstrError::new(format!("unknown instruction: {}", node.keyword))
                .at(node.keyword.clone());
            if let Some(s) = suggest(&upper) {
                err = err.hint(format!("did you mean {s}?"));
            }
            return Err(err);
        }
    };
    Ok(kind)
}

fn at_least_one(cmd: &str) -> InstrError {
    InstrError::new(format!("{cmd} requires at least one argument"))
}

fn exactly_one(node: &Node, cmd: &str) -> Result<String, InstrError> {
    match node.args.as_slice() {
        [one] => Ok(one.clone()),
        _ => Err(InstrError::new(format!(
            "{cmd} requires exactly one argument"
        ))),
    }
}

fn command_line(node: &Node) -> CommandLine {
    if node.json {
        CommandLine::Exec(node.args.clone())
    } else {
        CommandLine::Shell(node.args.join(" "))
    }
}

fn parse_from(node: &Node) -> Result<FromInstr, InstrError> {
    let flags = Flags::parse("FROM", &node.flags, &[("platform", Text)])?;
    let args = &node.args;
    let valid_shape = args.len() == 1 || (args.len() == 3 && args[1].eq_ignore_ascii_case("as"));
    if !valid_shape {
        return Err(
            InstrError::new("FROM requires either one or three arguments")
                .hint("write FROM <image> or FROM <image> AS <name>"),
        );
    }
    let (stage_name, as_written, as_keyword) = match args.as_slice() {
        [_, as_kw, name] => {
            let lower = name.to_ascii_lowercase();
            if !valid_stage_name(&lower) {
                return Err(InstrError::new(format!(
                    "invalid name for build stage: {name:?}, name can't start with a number or contain symbols"
                ))
                .at(name.clone())
                .hint("stage names start with a letter and contain only letters, digits, '-', '_' and '.'"));
            }
            (Some(lower), Some(name.clone()), Some(as_kw.clone()))
        }
        _ => (None, None, None),
    };
    Ok(FromInstr {
        base: args[0].clone(),
        stage_name,
        stage_name_as_written: as_written,
        as_keyword,
        platform: flags.text("platform"),
    })
}

pub(crate) fn valid_stage_name(lower: &str) -> bool {
    let mut chars = lower.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '_' | '.'))
}

fn parse_run(node: &Node) -> Result<RunInstr, InstrError> {
    let flags = Flags::parse("RUN", &node.flags, RUN_FLAGS)?;
    if node.args.is_empty() && node.heredocs.is_empty() {
        return Err(at_least_one("RUN"));
    }
    let mount_specs = flags.list("mount");
    let mut mounts = Vec::with_capacity(mount_specs.len());
    for spec in &mount_specs {
        let mount = mount::parse_mount(spec, &mut |v| Ok(v.to_string()))
            .map_err(|e| InstrError::new(e).at(spec.clone()))?;
        mounts.push(mount);
    }
    let network = match flags.text("network").as_deref() {
        None | Some("default") => NetworkMode::Default,
        Some("none") => NetworkMode::None,
        Some("host") => NetworkMode::Host,
        Some(other) => {
            return Err(
                InstrError::new(format!("unsupported network mode {other:?}"))
                    .at(format!("--network={other}"))
                    .hint("use --network=default, none or host"),
            );
        }
    };
    let security = match flags.text("security").as_deref() {
        None | Some("sandbox") => SecurityMode::Sandbox,
        Some("insecure") => SecurityMode::Insecure,
        Some(other) => {
            return Err(
                InstrError::new(format!("unsupported security mode {other:?}"))
                    .at(format!("--security={other}"))
                    .hint("use --security=sandbox or insecure"),
            );
        }
    };
    Ok(RunInstr {
        command: command_line(node),
        heredocs: node.heredocs.iter().map(InlineFile::from).collect(),
        mounts,
        mount_specs,
        network,
        security,
    })
}

fn key_values(node: &Node, cmd: &str) -> Result<Vec<KeyValue>, InstrError> {
    if node.args.is_empty() {
        return Err(at_least_one(cmd));
    }
    let mut out = Vec::new();
    for triple in node.args.chunks(3) {
        let [key, value, sep] = triple else {
            return Err(InstrError::new(format!(
                "Bad input to {cmd}, too many arguments"
            )));
        };
        if key.is_empty() {
            return Err(
                InstrError::new(format!("{cmd} names can not be blank")).at(format!("={value}"))
            );
        }
        out.push(KeyValue {
            key: key.clone(),
            value: value.clone(),
            legacy: sep.is_empty(),
        });
    }
    Ok(out)
}

fn parse_file_copy(
    node: &Node,
    cmd: &str,
    accepted: &[(&'static str, FlagKind)],
) -> Result<FileCopy, InstrError> {
    let flags = Flags::parse(cmd, &node.flags, accepted)?;
    let Some((dest, sources)) = node.args.split_last().filter(|(_, s)| !s.is_empty()) else {
        return Err(InstrError::new(format!(
            "{cmd} requires at least two arguments, but only one was provided. Destination could not be determined"
        ))
        .hint(format!("write {cmd} <src>... <dest>")));
    };
    if super::super::parser::heredoc_opener(dest).is_some() {
        return Err(
            InstrError::new(format!("{cmd} cannot accept a heredoc as a destination"))
                .at(dest.clone()),
        );
    }
    let mut typed_sources = Vec::with_capacity(sources.len());
    for src in sources {
        let doc = if node.json {
            None
        } else {
            super::super::parser::heredoc_opener(src)
        };
        match doc.and_then(|d| node.heredocs.iter().find(|h| h.name == d.name)) {
            Some(h) => typed_sources.push(CopySource::Heredoc(InlineFile::from(h))),
            None => typed_sources.push(CopySource::Path(src.clone())),
        }
    }
    let chmod = flags.text("chmod");
    let chmod_mode = match chmod.as_deref() {
        Some(c) if !c.contains('$') => {
            Some(parse_chmod(c).map_err(|e| InstrError::new(e).at(format!("--chmod={c}")))?)
        }
        _ => None,
    };
    let checksum = flags.text("checksum");
    if let Some(sum) = checksum.as_deref().filter(|s| !s.contains('$')) {
        validate_checksum(sum).map_err(|e| InstrError::new(e).at(sum.to_string()))?;
    }
    Ok(FileCopy {
        sources: typed_sources,
        dest: dest.clone(),
        from: flags.text("from"),
        chown: flags.text("chown"),
        chmod,
        chmod_mode,
        link: flags.bool("link"),
        parents: flags.bool("parents"),
        exclude: flags.list("exclude"),
        checksum,
        keep_git_dir: flags.opt_bool("keep-git-dir"),
        unpack: flags.opt_bool("unpack"),
        json: node.json,
    })
}

fn parse_arg(node: &Node) -> Result<Vec<ArgDecl>, InstrError> {
    if node.args.is_empty() {
        return Err(at_least_one("ARG"));
    }
    let mut out = Vec::with_capacity(node.args.len());
    for word in &node.args {
        let (name, default) = match word.split_once('=') {
            Some((n, v)) => (n.to_string(), Some(v.to_string())),
            None => (word.clone(), None),
        };
        if name.is_empty() {
            return Err(InstrError::new("ARG names can not be blank").at(word.clone()));
        }
        let description = comment_for(&node.comments, &name);
        out.push(ArgDecl {
            name,
            default,
            description,
        });
    }
    Ok(out)
}

/// The text of the first comment line that starts with `name `.
pub(crate) fn comment_for(comments: &[String], name: &str) -> String {
    if name.is_empty() {
        return String::new();
    }
    comments
        .iter()
        .find_map(|c| c.strip_prefix(name).and_then(|rest| rest.strip_prefix(' ')))
        .unwrap_or_default()
        .to_string()
}

fn parse_onbuild(node: &Node) -> Result<Onbuild, InstrError> {
    let Some(inner) = node.onbuild.as_deref() else {
        return Err(at_least_one("ONBUILD"));
    };
    let trigger = inner.keyword.to_ascii_uppercase();
    match trigger.as_str() {
        "ONBUILD" => {
            return Err(
                InstrError::new("Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed")
                    .at(inner.keyword.clone()),
            );
        }
        "MAINTAINER" | "FROM" => {
            return Err(
                InstrError::new(format!("{trigger} isn't allowed as an ONBUILD trigger"))
                    .at(inner.keyword.clone()),
            );
        }
        _ => {}
    }
    let mut typed = from_node(inner.clone())?;
    typed.start_line = node.start_line;
    typed.end_line = node.end_line;
    let trimmed = node.original.trim_start();
    let expression = trimmed
        .get(node.keyword.len()..)
        .unwrap_or_default()
        .trim_start()
        .to_string();
    Ok(Onbuild {
        expression,
        trigger: Box::new(typed),
    })
}

fn parse_healthcheck(node: &Node) -> Result<Healthcheck, InstrError> {
    let Some((kind, rest)) = node.args.split_first() else {
        return Err(at_least_one("HEALTHCHECK"));
    };
    let kind = kind.to_ascii_uppercase();
    if kind == "NONE" {
        Flags::parse("HEALTHCHECK NONE", &node.flags, &[])?;
        if !rest.is_empty() {
            return Err(InstrError::new("HEALTHCHECK NONE takes no arguments"));
        }
        return Ok(Healthcheck::None);
    }
    let flags = Flags::parse("HEALTHCHECK", &node.flags, HEALTH_FLAGS)?;
    if kind != "CMD" {
        return Err(
            InstrError::new(format!("Unknown type {kind:?} in HEALTHCHECK (try CMD)"))
                .at(node.args[0].clone()),
        );
    }
    let test = if node.json {
        CommandLine::Exec(rest.to_vec())
    } else {
        CommandLine::Shell(rest.join(" "))
    };
    let empty = match &test {
        CommandLine::Exec(v) => v.is_empty(),
        CommandLine::Shell(s) => s.is_empty(),
    };
    if empty {
        return Err(InstrError::new("missing command after HEALTHCHECK CMD"));
    }
    let duration = |name: &str| -> Result<Option<std::time::Duration>, InstrError> {
        let Some(v) = flags.text(name) else {
            return Ok(None);
        };
        let d =
            parse_go_duration(&v).map_err(|e| InstrError::new(e).at(format!("--{name}={v}")))?;
        if d.is_zero() {
            return Ok(None);
        }
        if d < std::time::Duration::from_millis(1) {
            return Err(
                InstrError::new(format!("Interval \"{name}\" cannot be less than 1ms"))
                    .at(format!("--{name}={v}")),
            );
        }
        Ok(Some(d))
    };
    let retries = match flags.text("retries") {
        None => None,
        Some(v) => {
            let n: i64 = v.parse().map_err(|_| {
                InstrError::new(format!(
                    "invalid --retries value {v:?}: expected a whole number"
                ))
                .at(format!("--retries={v}"))
            })?;
            if n < 0 {
                return Err(
                    InstrError::new(format!("--retries cannot be negative ({n})"))
                        .at(format!("--retries={v}")),
                );
            }
            u32::try_from(n).ok().filter(|n| *n > 0)
        }
    };
    Ok(Healthcheck::Cmd {
        test,
        interval: duration("interval")?,
        timeout: duration("timeout")?,
        start_period: duration("start-period")?,
        start_interval: duration("start-interval")?,
        retries,
    })
}

/// The closest keyword by edit distance, if close enough to be a likely typo.
fn suggest(word: &str) -> Option<&'static str> {
    KEYWORDS
        .iter()
        .map(|k| (levenshtein(word, k), *k))
        .filter(|(d, _)| *d <= 2)
        .min()
        .map(|(_, k)| k)
}

pub(crate) fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            let best = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
            cur.push(best);
        }
        prev = cur;
    }
    prev.last().copied().unwrap_or(0)
}
