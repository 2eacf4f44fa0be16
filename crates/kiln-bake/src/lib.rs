//! The bake frontend: reads docker-bake HCL and JSON files and compose files, evaluates
//! variables, functions, inherits, groups and matrices, and resolves build targets.
