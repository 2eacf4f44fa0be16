//! The solver: walks the build graph, runs independent ops in parallel up to a bound,
//! consults the cache before running an op and streams progress events.
