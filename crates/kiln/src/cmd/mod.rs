//! Subcommands.

pub mod bake;

#[derive(clap::Subcommand, Debug)]
pub enum Command {
    /// Build many targets from docker-bake.hcl, JSON or compose files
    Bake(bake::BakeArgs),
}

pub fn run(command: Command) -> i32 {
    match command {
        Command::Bake(args) => bake::run(args),
    }
}
