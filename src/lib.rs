//! mcf-ledger, the service: configuration, the command line, and (as the stages arrive) the
//! reactors, one adapter module per outside system, the web admin and the sandbox.

pub mod cli;
pub mod config;
pub mod telemetry;
