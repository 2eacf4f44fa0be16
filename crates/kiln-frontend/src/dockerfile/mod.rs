//! Dockerfile parsing, typed instructions and the stage model.
