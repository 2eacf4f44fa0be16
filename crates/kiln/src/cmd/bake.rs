//! `kiln bake`.

#[derive(clap::Args, Debug)]
pub struct BakeArgs {
    /// Targets or groups to build
    pub targets: Vec<String>,
}

pub fn run(_args: BakeArgs) -> i32 {
    eprintln!("kiln bake: not implemented yet");
    2
}
