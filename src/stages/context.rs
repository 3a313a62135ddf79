//! What a stage works with: the ledger, the process's services, and where it may stop.

use crate::stages::services::Services;
use crate::stages::steps::Steps;
use projections::Ledger;

/// What a stage works with: the ledger, the process's services, and its steps.
pub struct StageContext<'a> {
    pub ledger: &'a mut Ledger,
    pub services: &'a Services,
    /// Where the stage may stop (a graceful shutdown) and renews the cycle lease.
    pub steps: Steps<'a>,
}
