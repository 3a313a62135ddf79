//! The last FBA reading per seller SKU (what `check` or the stock stage was told), for the SKU
//! master page, the stock page and the stock plan.

use crate::projector::{Projected, ProjectionError, Projector};
use events::stock::StockEvent;
use events::store::{format_time, SqlContext, StoreError};
use events::upcast::Upcasters;
use events::LedgerEvent;
use rusqlite::{params, Connection, Transaction};

pub const NAME: &str = "fba_stock";

#[derive(Default)]
pub struct FbaStockProjector;

impl Projector for FbaStockProjector {
    fn name(&self) -> &'static str {
        NAME
    }

    fn apply(&mut self, tx: &Transaction<'_>, events: &[Projected<'_>], _: &Upcasters) -> Result<(), ProjectionError> {
        for projected in events {
            let LedgerEvent::Stock(StockEvent::FbaStockRead(read)) = projected.event else { continue };
            let at = format_time(projected.recorded.recorded_at);
            let mut upsert = tx
                .prepare_cached(
                    "INSERT INTO fba_stock (seller_sku, fulfillable, read_at, read_by) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT (seller_sku) DO UPDATE SET
                         fulfillable = excluded.fulfillable, read_at = excluded.read_at, read_by = excluded.read_by",
                )
                .context(|| "preparing the fba_stock upsert".into())?;
            for level in &read.levels {
                upsert
                    .execute(params![level.seller_sku, level.fulfillable, at, read.by])
                    .context(|| format!("recording the FBA stock of {}", level.seller_sku))?;
            }
        }
        Ok(())
    }

    fn forget_cache(&mut self) {}
}

/// One seller SKU's last reading.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FbaStockRow {
    pub seller_sku: String,
    pub fulfillable: u32,
    pub read_at: String,
    pub read_by: String,
}

/// Every seller SKU's last reading, by SKU.
pub fn fba_stock(conn: &Connection) -> Result<Vec<FbaStockRow>, StoreError> {
    let mut statement = conn
        .prepare_cached("SELECT seller_sku, fulfillable, read_at, read_by FROM fba_stock ORDER BY seller_sku")
        .context(|| "preparing the FBA stock read".into())?;
    let rows = statement
        .query_map([], |row| {
            Ok(FbaStockRow {
                seller_sku: row.get(0)?,
                fulfillable: row.get(1)?,
                read_at: row.get(2)?,
                read_by: row.get(3)?,
            })
        })
        .context(|| "reading the FBA stock".into())?;
    rows.map(|r| r.context(|| "reading the FBA stock".into())).collect()
}

/// The seller SKUs of the newest whole FBA reading (the stock stage's), if there was one: found
/// by SQL, so the growing `stock-fba` stream is not folded every cycle.
pub fn last_whole_reading(conn: &Connection) -> Result<Option<Vec<String>>, StoreError> {
    let mut statement = conn
        .prepare_cached(
            "SELECT position, data FROM events WHERE stream = ?1 AND type = 'FbaStockRead' AND json_extract(data, '$.whole') = 1
             ORDER BY position DESC LIMIT 1",
        )
        .context(|| "preparing the last whole FBA reading".into())?;
    let mut rows = statement
        .query_map([events::stock::FBA_STOCK_STREAM], |row| Ok((row.get::<_, i64>(0)?, row.get::<_, String>(1)?)))
        .context(|| "reading the last whole FBA reading".into())?;
    let Some((position, data)) = rows.next().transpose().context(|| "reading the last whole FBA reading".into())?
    else {
        return Ok(None);
    };
    let read: events::stock::FbaStockRead = serde_json::from_str(&data)
        .map_err(|e| StoreError::CorruptRow { position, reason: format!("an unreadable FbaStockRead: {e}") })?;
    Ok(Some(read.levels.into_iter().map(|l| l.seller_sku).collect()))
}
