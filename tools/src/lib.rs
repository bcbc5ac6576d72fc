//! Tools that are never deployed: the whole API on one plain HTTP port, the local sample
//! data, and the benchmark's and the operator commands' shared parts.

pub mod functions;
pub mod seed;
pub mod serve;
