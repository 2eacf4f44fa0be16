//! The Dockerfile frontend: everything kiln knows about a Dockerfile before anything runs.
//!
//! It owns the parser (directives, comments, continuations, heredocs, JSON/shell forms),
//! the shell lexer and word expansion with BuildKit's semantics, the typed instructions
//! with validated flags, the stage model (global ARGs, stage names, dependency edges,
//! `--target` pruning) and the `.dockerignore` matcher. Nothing here touches a container.

pub mod dockerfile;
pub mod dockerignore;
pub mod shell;
