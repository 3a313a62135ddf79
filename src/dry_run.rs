//! `replay dry-run`: one whole cycle against a scratch copy of the ledger, with the in-process
//! sandboxes standing in for Rakuten, Yahoo and Amazon, printing the events it would append.
//! The live ledger is only read (VACUUM INTO), and no real API is called.

use crate::cycle::{run_cycle, Stage};
use events::store::OpenMode;
use events::{Clock, RecordedEvent, SystemClock};
use projections::Ledger;
use sandbox::amazon::{AmazonSandbox, AmazonSandboxConfig};
use sandbox::rakuten::{RakutenSandbox, RakutenSandboxConfig};
use sandbox::yahoo::{YahooSandbox, YahooSandboxConfig};
use std::path::Path;
use std::sync::Arc;

/// Units of stock the sandbox Amazon holds for every seller SKU of master.xlsx.
pub const SANDBOX_STOCK: u32 = 1_000;

pub struct DryRun {
    pub scratch_events_before: i64,
    pub appended: Vec<RecordedEvent>,
    pub stage_failures: Vec<String>,
}

pub async fn dry_run(database: &Path, sku_master: &Path) -> Result<DryRun, String> {
    if !database.exists() {
        return Err(format!("{} does not exist", database.display()));
    }
    let scratch = tempfile::tempdir().map_err(|e| format!("creating a scratch directory: {e}"))?;
    let copy = scratch.path().join("dry-run.db");
    {
        let live = rusqlite::Connection::open_with_flags(database, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .map_err(|e| format!("opening {} read-only: {e}", database.display()))?;
        live.execute("VACUUM INTO ?1", [copy.to_string_lossy().as_ref()])
            .map_err(|e| format!("copying {} to a scratch file: {e}", database.display()))?;
    }
    let mut ledger = Ledger::open(&copy, OpenMode::MustExist).map_err(|e| e.to_string())?;
    let before = ledger.store().head_position().map_err(|e| e.to_string())?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let amazon = AmazonSandbox::start(AmazonSandboxConfig::default()).await.map_err(|e| e.to_string())?;
    let rakuten = RakutenSandbox::start(RakutenSandboxConfig::default(), crate::demo::sandbox_clock(clock.clone()))
        .await
        .map_err(|e| e.to_string())?;
    let yahoo =
        YahooSandbox::start(YahooSandboxConfig::generate("dry-run-store"), crate::demo::sandbox_clock(clock.clone()))
            .await
            .map_err(|e| e.to_string())?;
    // Mail the cycle sends goes to a sandbox mail server too, never to a real one.
    let mail = crate::demo::start_mail_sandbox("dry-run").await?;
    let services = crate::demo::sandbox_services(
        (&amazon, &rakuten, &yahoo, &mail),
        sku_master,
        crate::demo::MARKETPLACE_RATE,
        clock,
    )?;
    if let Ok(mapping) = services.sku_master.mapping(&mut ledger) {
        for component in mapping.entries.values().flat_map(|m| &m.components) {
            amazon.set_stock(&component.seller_sku.0, SANDBOX_STOCK);
        }
    }
    let report = run_cycle(&mut ledger, &services, &Stage::ALL).await.map_err(|e| e.to_string())?;
    let appended = ledger.store().read_all(before, 1_000_000).map_err(|e| e.to_string())?;
    Ok(DryRun {
        scratch_events_before: before,
        appended,
        stage_failures: report.failures.iter().map(|f| format!("{}: {}", f.stage, f.error)).collect(),
    })
}
