#![recursion_limit = "256"]
//! mcf-ledger, the service: configuration, the command line, the stage reactors, one adapter
//! module per outside system, and the sandbox that fakes those systems for the demo and tests.

pub mod allocator;
pub mod amazon;
pub mod cli;
pub mod config;
pub mod cycle;
pub mod daemon;
pub mod demo;
pub mod dry_run;
pub mod lease;
pub mod mail;
pub mod rakuten;
pub mod reparse;
pub mod sku_master;
pub mod stages;
pub mod telemetry;
pub mod transport;
pub mod web;
pub mod yahoo;
