//! kiln: the command line. It parses flags and hands work to the pipeline crates.

mod cmd;
mod render;

use clap::Parser;

#[derive(Parser, Debug)]
#[command(name = "kiln", version, about = "A daemonless container image builder")]
struct Cli {
    #[command(subcommand)]
    command: cmd::Command,
}

fn main() {
    let cli = Cli::parse();
    let code = cmd::run(cli.command);
    std::process::exit(code);
}
