//! Subcommands. Each module parses its flags and calls into the pipeline crates.

pub mod bake;
mod bake_exec;
mod bake_shortcut;
pub mod build;
mod build_call;
mod build_exec;
mod images;
pub mod login;
pub mod prune;

use std::path::Path;

use kiln_store::Store;

/// The store at `--root`, or at the default root without one.
fn open_store(root: Option<&Path>) -> Result<Store, String> {
    let root = match root {
        Some(r) => r.to_path_buf(),
        None => Store::default_root().map_err(|e| e.to_string())?,
    };
    Store::open(&root).map_err(|e| format!("cannot open the store at {}: {e}", root.display()))
}

#[derive(clap::Subcommand, Debug)]
pub enum Command {
    /// Build an image from a Dockerfile (the flags of `docker buildx build`)
    Build(Box<build::BuildArgs>),
    /// Build many targets from docker-bake.hcl, JSON or compose files
    Bake(bake::BakeArgs),
    /// List images in kiln's store
    Images(images::ImagesArgs),
    /// Remove images from kiln's store
    Rmi(images::RmiArgs),
    /// Write images to a docker archive (what `docker load` reads)
    Save(images::SaveArgs),
    /// Load images from a docker or OCI archive
    Load(images::LoadArgs),
    /// Create an image from a root filesystem tarball (like `docker import`)
    Import(images::ImportArgs),
    /// Show disk usage of the build cache
    Du(prune::DuArgs),
    /// Remove build cache
    Prune(prune::PruneArgs),
    /// Log in to a registry (credentials go where docker keeps them)
    Login(login::LoginArgs),
    /// Log out from a registry
    Logout(login::LogoutArgs),
}

pub fn run(command: Command, globals: &crate::Globals) -> i32 {
    let root = globals.root.as_deref();
    match command {
        Command::Build(args) => build::run(&args, root),
        Command::Bake(args) => bake::run(args, root),
        Command::Images(args) => images::run_images(&args, root),
        Command::Rmi(args) => images::run_rmi(&args, root),
        Command::Save(args) => images::run_save(&args, root),
        Command::Load(args) => images::run_load(&args, root),
        Command::Import(args) => images::run_import(&args, root),
        Command::Du(args) => prune::run_du(&args, root),
        Command::Prune(args) => prune::run_prune(&args, root),
        Command::Login(args) => login::run_login(&args),
        Command::Logout(args) => login::run_logout(&args),
    }
}
