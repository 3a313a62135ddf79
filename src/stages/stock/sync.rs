//! The stock stage (STOCK_SYNC=plan|on): read every SKU of the master at FBA, plan, and with
//! `on` write to each marketplace the listings whose quantity changed. Each write is intended,
//! made, and read back (both marketplaces take unknown keys silently), its outcome recorded
//! per listing; a write whose answer was lost is read back before anything is written again.
//! A plan the brakes stop is held, alerted and shown until an operator confirms it.

use super::marketplaces::{StockApi, WriteError};
use crate::config::StockSync;
use crate::stages::context::StageContext;
use crate::stages::report::{StageError, StageReport};
use events::envelope::{Actor, ExpectedVersion, Meta};
use events::stock::plan::{brakes, plan, PlanInputs};
use events::stock::publish::{rows_to_write, verify, Published, SyncState};
use events::stock::{
    published_stream, FbaLevel, FbaStockRead, StockEvent, StockRow, StockRowProblem, StockSyncFinished, StockSyncHeld,
    StockWriteDone, StockWriteFailed, StockWriteIntended, FBA_STOCK_STREAM, STOCK_SYNC_STREAM,
};
use events::{Marketplace, SellerSku};
use projections::{Ledger, LedgerError};
use std::collections::{BTreeMap, BTreeSet};

const STAGE: &str = "stock";

fn append(ledger: &mut Ledger, stream: &str, event: StockEvent) -> Result<(), LedgerError> {
    ledger.append(stream, ExpectedVersion::Any, &[event.to_new_event(Meta::by(Actor::reactor(STAGE)))])?;
    Ok(())
}

fn decoded(ledger: &Ledger, stream: &str) -> Result<Vec<(StockEvent, String)>, LedgerError> {
    let upcasters = events::ledger_event::upcasters();
    let mut out = Vec::new();
    for recorded in ledger.store().read_stream(stream)? {
        let at = recorded.recorded_at.with_timezone(&events::clock::jst()).format("%Y-%m-%d %H:%M JST").to_string();
        out.push((StockEvent::decode(&recorded, &upcasters)?, at));
    }
    Ok(out)
}

/// What `marketplace` was told, from its `stock-*` stream.
pub fn published(ledger: &Ledger, marketplace: Marketplace) -> Result<Published, LedgerError> {
    let events = decoded(ledger, &published_stream(marketplace))?;
    Ok(Published::fold(events.iter().map(|(e, at)| (e, at.clone()))))
}

/// Held, confirmed, last run.
pub fn sync_state(ledger: &Ledger) -> Result<SyncState, LedgerError> {
    let events = decoded(ledger, STOCK_SYNC_STREAM)?;
    Ok(SyncState::fold(events.iter().map(|(e, _)| e)))
}

/// The seller SKUs of the last whole reading (the stock stage's), if there was one.
fn last_whole_reading(ledger: &Ledger) -> Result<Option<BTreeSet<String>>, LedgerError> {
    let skus = projections::stock::last_whole_reading(ledger.store().connection())?;
    Ok(skus.map(|skus| skus.into_iter().collect()))
}

/// An operator lets the held plan be published (the next run writes it despite the brakes).
/// False when nothing is held.
pub fn confirm(ledger: &mut Ledger, by: &str) -> Result<bool, LedgerError> {
    let state = sync_state(ledger)?;
    if state.held.is_none() || state.confirmed {
        return Ok(false);
    }
    tracing::info!(by, "held stock plan confirmed by an operator");
    let confirmed = events::stock::StockSyncConfirmed { by: by.to_owned() };
    let event = StockEvent::StockSyncConfirmed(confirmed).to_new_event(Meta::by(Actor::operator(by)));
    ledger.append(STOCK_SYNC_STREAM, ExpectedVersion::Any, &[event])?;
    Ok(true)
}

pub async fn run(ctx: &mut StageContext<'_>) -> Result<Vec<StageReport>, StageError> {
    let settings = ctx.services.stock;
    if settings.sync == StockSync::Off {
        return Ok(vec![]);
    }
    let mut report = StageReport::new(STAGE);
    // The workbook check uses (loaded or reloaded when the file changed).
    let mapping = match ctx.services.sku_master.mapping(ctx.ledger) {
        Ok(mapping) => mapping,
        Err(crate::stages::sku_master::NoMapping::Ledger(error)) => return Err(error.into()),
        Err(crate::stages::sku_master::NoMapping::NeverLoaded(error)) => {
            tracing::warn!(%error, "no SKU master has loaded: stock is not read");
            return Ok(vec![report]);
        }
    };
    let listings = super::listings(&mapping);
    let mut skus: Vec<SellerSku> =
        mapping.entries.values().flat_map(|m| m.components.iter().map(|c| c.seller_sku.clone())).collect();
    skus.sort();
    skus.dedup();
    let seen_before = last_whole_reading(ctx.ledger)?.unwrap_or_default();
    let found = match ctx.services.amazon.inventory_found(&skus).await {
        Ok(found) => found,
        Err(error) => {
            crate::stages::orders::amazon_unread(ctx.ledger, &mut report, &error)?;
            // A failed read is no zero: nothing is published, and everything is written again
            // once FBA answers.
            let finished =
                StockSyncFinished { written: 0, unchanged: 0, problems: 0, unavailable: vec!["amazon".into()] };
            append(ctx.ledger, STOCK_SYNC_STREAM, StockEvent::StockSyncFinished(finished))?;
            return Ok(vec![report]);
        }
    };
    let mut levels: Vec<FbaLevel> = found
        .iter()
        .map(|(sku, level)| FbaLevel { seller_sku: sku.to_string(), fulfillable: level.fulfillable })
        .collect();
    levels.sort_by(|a, b| a.seller_sku.cmp(&b.seller_sku));
    let read_now: BTreeSet<String> = levels.iter().map(|l| l.seller_sku.clone()).collect();
    let read = FbaStockRead { by: STAGE.into(), whole: true, levels: levels.clone() };
    append(ctx.ledger, FBA_STOCK_STREAM, StockEvent::FbaStockRead(read))?;

    let apis: Vec<StockApi> =
        [ctx.services.rakuten.as_ref().map(StockApi::Rakuten), ctx.services.yahoo.as_ref().map(StockApi::Yahoo)]
            .into_iter()
            .flatten()
            .collect();
    let mut told = BTreeMap::new();
    let mut resolved = BTreeMap::new();
    for api in &apis {
        let marketplace = api.marketplace();
        let published = resolve_pending(ctx.ledger, api, &mut report).await?;
        for (sku, quantity) in published.told_under(|sku| super::current_key(&mapping, sku, marketplace)) {
            told.insert((marketplace, sku), quantity);
        }
        resolved.insert(marketplace, published);
    }
    let inputs = PlanInputs {
        listings,
        marketplaces: apis.iter().map(StockApi::marketplace).collect(),
        fba: levels.iter().map(|l| (l.seller_sku.clone(), l.fulfillable)).collect(),
        allotted: crate::stages::check::allotted_not_reserved(ctx.ledger)?
            .into_iter()
            .map(|(sku, units)| (sku.to_string(), units))
            .collect(),
        default_buffer: settings.buffer,
        published: told,
    };
    let rows = plan(&inputs);
    report.examined += rows.len();
    if settings.sync == StockSync::Plan {
        tracing::info!(rows = rows.len(), "stock planned (STOCK_SYNC=plan: nothing is published)");
        return Ok(vec![report]);
    }
    let state = sync_state(ctx.ledger)?;
    let found_brakes = brakes(&rows, &seen_before, &read_now, settings.brake_percent);
    if !found_brakes.is_empty() && !state.confirmed {
        let reasons: Vec<String> = found_brakes.iter().map(|b| b.describe()).collect();
        if state.held.as_ref() != Some(&reasons) {
            tracing::warn!(?reasons, "stock plan held by the brakes until an operator confirms it");
            append(ctx.ledger, STOCK_SYNC_STREAM, StockEvent::StockSyncHeld(StockSyncHeld { reasons }))?;
        }
        report.needs_operator += 1;
        return Ok(vec![report]);
    }
    let last_unavailable = state.last_finished.map(|f| f.unavailable).unwrap_or_default();
    let mut finished = StockSyncFinished { written: 0, unchanged: 0, problems: 0, unavailable: vec![] };
    for api in &apis {
        if !ctx.steps.proceed(ctx.ledger, &mut report)? {
            break;
        }
        let marketplace = api.marketplace();
        let published = resolved.remove(&marketplace).unwrap_or_default();
        if published.pending.is_some() {
            // Its lost write could not be read back: nothing more is written there now.
            finished.unavailable.push(marketplace.as_str().into());
            continue;
        }
        let resync = published.resync || last_unavailable.iter().any(|u| u == "amazon" || u == marketplace.as_str());
        let to_write = rows_to_write(&rows, marketplace, resync);
        let planned = rows.iter().filter(|r| r.marketplace == marketplace && r.key.is_some()).count();
        finished.unchanged += u32::try_from(planned.saturating_sub(to_write.len())).unwrap_or(u32::MAX);
        for batch in to_write.chunks(api.batch_limit()) {
            match publish_batch(ctx.ledger, api, batch, &mut report).await? {
                Some(problems) => {
                    finished.written += u32::try_from(batch.len()).unwrap_or(u32::MAX);
                    finished.problems += problems;
                }
                None => {
                    finished.unavailable.push(marketplace.as_str().into());
                    break;
                }
            }
        }
    }
    append(ctx.ledger, STOCK_SYNC_STREAM, StockEvent::StockSyncFinished(finished))?;
    Ok(vec![report])
}

/// A write of `api`'s marketplace whose outcome is unknown is read back first: recorded done
/// (per listing, verified or not). Its stream folded afterwards.
async fn resolve_pending(
    ledger: &mut Ledger,
    api: &StockApi<'_>,
    report: &mut StageReport,
) -> Result<Published, StageError> {
    let marketplace = api.marketplace();
    let published = published(ledger, marketplace)?;
    let Some(pending) = published.pending.clone() else { return Ok(published) };
    let keys: Vec<_> = pending.rows.iter().map(|r| r.key.clone()).collect();
    match api.read(&keys).await {
        Ok(seen) => {
            let (verified, problems) = verify(&pending.rows, &seen);
            tracing::info!(%marketplace, write = pending.write_id, verified = verified.len(), "a lost stock write read back");
            let done = StockWriteDone {
                write_id: pending.write_id,
                verified,
                problems,
                note: "応答のなかった書き込みを読み返しました".into(),
            };
            append(ledger, &published_stream(marketplace), StockEvent::StockWriteDone(done))?;
            Ok(self::published(ledger, marketplace)?)
        }
        Err(error) => {
            tracing::warn!(%marketplace, %error, "cannot read back a lost stock write; nothing is written there now");
            report.deferred += pending.rows.len();
            Ok(published)
        }
    }
}

/// One batch: intended, written, read back, its outcome recorded. Some(problems) when it came
/// to an outcome; None when it may or may not have been applied (read back next run).
async fn publish_batch(
    ledger: &mut Ledger,
    api: &StockApi<'_>,
    batch: &[StockRow],
    report: &mut StageReport,
) -> Result<Option<u32>, StageError> {
    let marketplace = api.marketplace();
    let stream = published_stream(marketplace);
    let write_id = uuid::Uuid::now_v7().simple().to_string();
    let intent = StockWriteIntended { write_id: write_id.clone(), rows: batch.to_vec() };
    append(ledger, &stream, StockEvent::StockWriteIntended(intent))?;
    let refused = match api.write(batch).await {
        Ok(refused) => refused,
        Err(WriteError::Refused { code, message }) => {
            tracing::warn!(%marketplace, write = write_id, message, "the marketplace refused the stock write");
            append(ledger, &stream, StockEvent::StockWriteFailed(StockWriteFailed { write_id, code, message }))?;
            report.needs_operator += 1;
            return Ok(Some(u32::try_from(batch.len()).unwrap_or(u32::MAX)));
        }
        Err(WriteError::Unknown(error)) => {
            tracing::warn!(%marketplace, write = write_id, %error, "stock write not confirmed; read back next run");
            report.deferred += batch.len();
            return Ok(None);
        }
    };
    let applied: Vec<StockRow> = batch.iter().filter(|r| !refused.iter().any(|(k, _)| k == &r.key)).cloned().collect();
    let keys: Vec<_> = applied.iter().map(|r| r.key.clone()).collect();
    let seen = match api.read(&keys).await {
        Ok(seen) => seen,
        Err(error) => {
            tracing::warn!(%marketplace, write = write_id, %error, "stock written but not read back; read back next run");
            report.deferred += batch.len();
            return Ok(None);
        }
    };
    let (verified, mut problems) = verify(&applied, &seen);
    for (key, code) in refused {
        let Some(row) = batch.iter().find(|r| r.key == key) else { continue };
        problems.push(StockRowProblem {
            marketplace_sku: row.marketplace_sku.clone(),
            key,
            problem: format!("モールがこの行を受け付けませんでした（モールのエラー: {code}）"),
            write_again: false,
        });
    }
    tracing::info!(%marketplace, write = write_id, verified = verified.len(), problems = problems.len(), "stock written and read back");
    report.advanced += verified.len();
    report.needs_operator += problems.len();
    let count = u32::try_from(problems.len()).unwrap_or(u32::MAX);
    let done = StockWriteDone { write_id, verified, problems, note: "書き込み後に読み返しました".into() };
    append(ledger, &stream, StockEvent::StockWriteDone(done))?;
    Ok(Some(count))
}
