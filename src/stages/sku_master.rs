//! The SKU master in use: `master.xlsx` is read again when its content changes, and every load
//! or rejection is recorded in the `sku-master` stream with the workbook's hash; the workbook
//! itself is kept as a blob, so when the file on disk is broken the last good mapping stays in
//! use, even in a fresh process. A workbook is refused when it is broken, has no rows, or drops
//! SKUs that open orders still need.

use crate::sku_master::{parse_workbook, SkuMapping, SkuMasterError};
use events::envelope::{Actor, ExpectedVersion, Meta};
use events::sku_master::{SkuMasterEvent, SkuMasterLoaded, SkuMasterRejected, SKU_MASTER_STREAM as STREAM};
use events::store::sha256_hex;
use projections::{Ledger, LedgerError};
use std::path::{Path, PathBuf};

/// Why no mapping is usable at all.
#[derive(Debug, thiserror::Error)]
pub enum NoMapping {
    #[error("{0}; and no earlier SKU master was ever loaded")]
    NeverLoaded(SkuMasterError),
    #[error("the ledger: {0}")]
    Ledger(#[from] LedgerError),
}

/// Keeps the mapping current: re-reads the file when its content changes. Shared by the
/// stages that run at once (its state is behind a lock; a load is recorded once).
#[derive(Debug)]
pub struct SkuMaster {
    path: PathBuf,
    state: std::sync::Mutex<Keeper>,
}

#[derive(Debug, Default)]
struct Keeper {
    current: Option<SkuMapping>,
    /// Hash of the file content last looked at (good or bad), so a bad file is reported once.
    last_seen: Option<String>,
    /// The newest problem with the file on disk, while the last good mapping is in use.
    problem: Option<String>,
}

impl SkuMaster {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into(), state: std::sync::Mutex::new(Keeper::default()) }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn keeper(&self) -> std::sync::MutexGuard<'_, Keeper> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The newest problem with the file on disk, while the last good mapping is in use.
    pub fn problem(&self) -> Option<String> {
        self.keeper().problem.clone()
    }

    /// The mapping to use now. Loads or reloads the file when it changed, recording the load or
    /// the rejection; falls back to the last good workbook recorded in the ledger. A workbook
    /// is rejected when it is broken, has no rows, or drops SKUs that open orders still need.
    pub fn mapping(&self, ledger: &mut Ledger) -> Result<SkuMapping, NoMapping> {
        let shown = self.path.display().to_string();
        let bytes = std::fs::read(&self.path);
        let sha = bytes.as_ref().ok().map(|b| sha256_hex(b));
        let mut keeper = self.keeper();
        if sha.is_none() || sha != keeper.last_seen {
            keeper.last_seen = sha.clone();
            if keeper.current.is_none() {
                keeper.current = last_good(ledger)?;
            }
            let parsed = match &bytes {
                Ok(bytes) => parse_workbook(bytes, &shown),
                Err(e) => Err(SkuMasterError::Unreadable { path: shown.clone(), reason: e.to_string() }),
            };
            let parsed = match (parsed, &keeper.current) {
                (Ok(new), Some(current)) if current.sha256 != new.sha256 => refuse_dropped_skus(ledger, current, new)?,
                (parsed, _) => parsed,
            };
            match parsed {
                Ok(mapping) if keeper.current.as_ref().is_some_and(|c| c.sha256 == mapping.sha256) => {
                    keeper.problem = None
                }
                Ok(mut mapping) => {
                    let bytes = bytes.as_deref().unwrap_or_default();
                    mapping.loaded_at = Some(record_load(ledger, &mapping, bytes, &shown)?);
                    tracing::info!(path = %shown, rows = mapping.entries.len(), "SKU master loaded");
                    keeper.current = Some(mapping);
                    keeper.problem = None;
                }
                Err(error) => {
                    record_rejection(ledger, sha.as_deref().unwrap_or("missing"), &error, &shown)?;
                    tracing::warn!(path = %shown, %error, "SKU master rejected; the last good mapping stays in use");
                    keeper.problem = Some(error.to_string());
                    if keeper.current.is_none() {
                        return Err(NoMapping::NeverLoaded(error));
                    }
                }
            }
        }
        match &keeper.current {
            Some(mapping) => Ok(mapping.clone()),
            None => Err(NoMapping::NeverLoaded(SkuMasterError::Unreadable {
                path: shown,
                reason: keeper.problem.clone().unwrap_or_else(|| "not loaded".into()),
            })),
        }
    }

    /// The workbook in use, and why the file on disk is not, for an operator's message.
    pub fn describe_in_use(&self) -> String {
        let keeper = self.keeper();
        match (&keeper.current, &keeper.problem) {
            (Some(mapping), None) => mapping.describe(),
            (Some(mapping), Some(problem)) => {
                format!("{}（ディスク上のファイルは受け付けられませんでした: {problem}）", mapping.describe())
            }
            (None, _) => self.path.display().to_string(),
        }
    }
}

/// Statuses whose orders will still be mapped through the master (at check, or again after an
/// operator's recovery).
const STILL_TO_MAP: [events::order::Status; 5] = [
    events::order::Status::Received,
    events::order::Status::AwaitingConfirmation,
    events::order::Status::Verified,
    events::order::Status::OutOfStock,
    events::order::Status::Error,
];

/// `new`, unless it drops SKUs of the current mapping that open orders still need.
fn refuse_dropped_skus(
    ledger: &Ledger,
    current: &SkuMapping,
    new: SkuMapping,
) -> Result<Result<SkuMapping, SkuMasterError>, NoMapping> {
    let dropped = current.dropped_in(&new);
    if dropped.is_empty() {
        return Ok(Ok(new));
    }
    let mut needed: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for status in STILL_TO_MAP {
        let keys =
            projections::queries::order_keys_in(ledger.store().connection(), status).map_err(LedgerError::from)?;
        for (key, _) in keys {
            let Ok(order) = key.parse::<events::OrderKey>() else { continue };
            let state = ledger.order_state(&order)?;
            for item in state.details.iter().flat_map(|d| &d.items) {
                if dropped.contains(&item.marketplace_sku) {
                    needed.entry(item.marketplace_sku.clone()).or_default().push(key.clone());
                }
            }
        }
    }
    if needed.is_empty() {
        return Ok(Ok(new));
    }
    let skus = needed
        .iter()
        .map(|(sku, orders)| {
            let more = if orders.len() > 3 { format!(" ほか{}件", orders.len() - 3) } else { String::new() };
            format!("{sku}（注文 {}{more}）", orders.iter().take(3).cloned().collect::<Vec<_>>().join(", "))
        })
        .collect::<Vec<_>>()
        .join("; ");
    Ok(Err(SkuMasterError::DropsSkusOfOpenOrders { path: new.path, skus }))
}

/// Records a load; returns when.
fn record_load(
    ledger: &mut Ledger,
    mapping: &SkuMapping,
    bytes: &[u8],
    path: &str,
) -> Result<chrono::DateTime<chrono::Utc>, LedgerError> {
    let blob = ledger.store().put_blob(bytes, "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")?;
    let loaded = SkuMasterLoaded { sha256: mapping.sha256.clone(), rows: mapping.entries.len(), path: path.to_owned() };
    let event = SkuMasterEvent::SkuMasterLoaded(loaded)
        .to_new_event(Meta::by(Actor::system()))
        .with_blob(blob.sha256)
        .idempotent(format!("sku-master:loaded:{}", mapping.sha256));
    ledger.append(STREAM, ExpectedVersion::Any, &[event])?;
    Ok(ledger.store().now())
}

fn record_rejection(ledger: &mut Ledger, sha: &str, error: &SkuMasterError, path: &str) -> Result<(), LedgerError> {
    let rejected = SkuMasterRejected { sha256: sha.to_owned(), error: error.to_string(), path: path.to_owned() };
    let event = SkuMasterEvent::SkuMasterRejected(rejected)
        .to_new_event(Meta::by(Actor::system()))
        .idempotent(format!("sku-master:rejected:{sha}"));
    ledger.append(STREAM, ExpectedVersion::Any, &[event])?;
    Ok(())
}

/// The newest workbook that loaded, from its stored blob (still valid for this build).
pub(crate) fn last_good(ledger: &Ledger) -> Result<Option<SkuMapping>, LedgerError> {
    let upcasters = events::ledger_event::upcasters();
    let events = ledger.store().read_stream_of_types(STREAM, &["SkuMasterLoaded"])?;
    for event in events.iter().rev() {
        let (Some(blob), SkuMasterEvent::SkuMasterLoaded(loaded)) =
            (&event.blob, SkuMasterEvent::decode(event, &upcasters)?)
        else {
            continue;
        };
        if let Some((_, bytes)) = ledger.store().get_blob(blob)? {
            if let Ok(mut mapping) = parse_workbook(&bytes, &loaded.path) {
                mapping.loaded_at = Some(event.recorded_at);
                return Ok(Some(mapping));
            }
        }
    }
    Ok(None)
}
