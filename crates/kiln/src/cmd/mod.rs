//! Subcommands. Each module parses its flags and calls into the pipeline crates.

pub mod bake;
pub mod build;
mod build_call;

#[derive(clap::Subcommand, Debug)]
pub enum Command {
    /// Build an image from a Dockerfile (the flags of `docker buildx build`)
    Build(Box<build::BuildArgs>),
    /// Build many targets from docker-bake.hcl, JSON or compose files
    Bake(bake::BakeArgs),
}

pub fn run(command: Command, _globals: &crate::Globals) -> i32 {
    match command {
        Command::Build(args) => build::run(&args),
        Command::Bake(args) => bake::run(args),
    }
}
