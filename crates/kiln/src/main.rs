//! kiln: the command line. It parses flags and hands work to the pipeline crates.

mod cmd;
mod config;
mod progress;
mod render;
mod timing;

use std::path::PathBuf;

use clap::Parser;

#[derive(Parser, Debug)]
#[command(name = "kiln", version, about = "A daemonless container image builder")]
struct Cli {
    /// Store root (default: /var/lib/kiln as root, else $XDG_DATA_HOME/kiln)
    #[arg(long, global = true, env = "KILN_ROOT")]
    root: Option<PathBuf>,

    #[command(subcommand)]
    command: cmd::Command,
}

/// Options every subcommand can see.
#[derive(Debug, Clone)]
pub struct Globals {
    pub root: Option<PathBuf>,
}

fn main() {
    timing::start();
    let cli = Cli::parse();
    let globals = Globals { root: cli.root };
    timing::mark("arguments parsed");
    let code = cmd::run(cli.command, &globals);
    timing::mark("done");
    std::process::exit(code);
}
