//! The stock APIs of RMS and Yahoo, in one shape for the sync: write absolute quantities, read
//! them back. Translation only: what the answers mean is decided in `events::stock::publish`.

use crate::rakuten::{RakutenClient, RakutenError};
use crate::transport::SourceError;
use crate::yahoo::{YahooClient, YahooError};
use events::stock::publish::SeenStock;
use events::stock::{StockKey, StockRow};
use events::Marketplace;

/// A marketplace's stock API.
pub enum StockApi<'a> {
    Rakuten(&'a RakutenClient),
    Yahoo(&'a YahooClient),
}

/// Why a write did not (surely) happen.
#[derive(Debug)]
pub enum WriteError {
    /// The marketplace refused the request: nothing of it was applied.
    Refused { code: Option<String>, message: String },
    /// No answer, or one that could not be read: it may have been applied.
    Unknown(String),
}

impl StockApi<'_> {
    pub fn marketplace(&self) -> Marketplace {
        match self {
            Self::Rakuten(_) => Marketplace::Rakuten,
            Self::Yahoo(_) => Marketplace::Yahoo,
        }
    }

    /// Rows one write may carry: RMS's bulk-upsert takes 400, Yahoo's setStock 1,000.
    pub fn batch_limit(&self) -> usize {
        match self {
            Self::Rakuten(_) => 400,
            Self::Yahoo(_) => 1000,
        }
    }

    /// Writes the rows' absolute quantities. Ok: the rows the marketplace refused one by one
    /// (Yahoo's 207), with its error code; the others were applied.
    pub async fn write(&self, rows: &[StockRow]) -> Result<Vec<(StockKey, String)>, WriteError> {
        match self {
            Self::Rakuten(client) => {
                let rows: Vec<(String, String, u32)> = rows
                    .iter()
                    .filter_map(|row| match &row.key {
                        StockKey::Rakuten { manage_number, variant_id } => {
                            Some((manage_number.clone(), variant_id.clone(), row.quantity))
                        }
                        StockKey::Yahoo { .. } => None,
                    })
                    .collect();
                client.upsert_inventory(&rows).await.map(|()| vec![]).map_err(rakuten_write_error)
            }
            Self::Yahoo(client) => {
                let rows: Vec<(String, u32)> = rows
                    .iter()
                    .filter_map(|row| match &row.key {
                        StockKey::Yahoo { item_code } => Some((item_code.clone(), row.quantity)),
                        StockKey::Rakuten { .. } => None,
                    })
                    .collect();
                let results = client.set_stock(&rows).await.map_err(yahoo_write_error)?;
                Ok(results
                    .into_iter()
                    .filter_map(|result| {
                        let error = result.error?;
                        Some((StockKey::Yahoo { item_code: result.code }, error))
                    })
                    .collect())
            }
        }
    }

    /// Each key's stock as the marketplace shows it now (up to 1,000 keys a call).
    pub async fn read(&self, keys: &[StockKey]) -> Result<Vec<SeenStock>, String> {
        let mut seen = Vec::new();
        for batch in keys.chunks(1000) {
            match self {
                Self::Rakuten(client) => {
                    let wanted: Vec<(String, String)> = batch
                        .iter()
                        .filter_map(|key| match key {
                            StockKey::Rakuten { manage_number, variant_id } => {
                                Some((manage_number.clone(), variant_id.clone()))
                            }
                            StockKey::Yahoo { .. } => None,
                        })
                        .collect();
                    let levels = client.inventory(&wanted).await.map_err(|e| e.to_string())?;
                    // bulk-get leaves out the SKUs RMS has no item for.
                    let zero_items = rakuten_items_at_zero(batch, &levels);
                    let orderable = rakuten_orderable_at_zero(client, &zero_items).await?;
                    for key in batch {
                        let level = levels.iter().find(|l| match key {
                            StockKey::Rakuten { manage_number, variant_id } => {
                                l.manage_number.eq_ignore_ascii_case(manage_number) && &l.variant_id == variant_id
                            }
                            StockKey::Yahoo { .. } => false,
                        });
                        seen.push(SeenStock {
                            key: key.clone(),
                            found: level.is_some(),
                            quantity: level.map(|l| l.quantity),
                            orderable_at_zero: orderable.contains(key),
                        });
                    }
                }
                Self::Yahoo(client) => {
                    let codes: Vec<String> = batch
                        .iter()
                        .filter_map(|key| match key {
                            StockKey::Yahoo { item_code } => Some(item_code.clone()),
                            StockKey::Rakuten { .. } => None,
                        })
                        .collect();
                    for level in client.stock(&codes).await.map_err(|e| e.to_string())? {
                        seen.push(SeenStock {
                            key: StockKey::Yahoo { item_code: level.code },
                            found: level.found,
                            quantity: if level.unlimited { None } else { level.quantity },
                            orderable_at_zero: level.allow_overdraft,
                        });
                    }
                }
            }
        }
        Ok(seen)
    }
}

/// The items (manageNumber) with a variant of `batch` at 0 now: only there does it matter
/// whether RMS still takes orders.
fn rakuten_items_at_zero(batch: &[StockKey], levels: &[crate::rakuten::model::InventoryLevel]) -> Vec<String> {
    let mut items: Vec<String> = batch
        .iter()
        .filter_map(|key| match key {
            StockKey::Rakuten { manage_number, variant_id } => levels
                .iter()
                .any(|l| {
                    l.manage_number.eq_ignore_ascii_case(manage_number)
                        && &l.variant_id == variant_id
                        && l.quantity == 0
                })
                .then(|| manage_number.clone()),
            StockKey::Yahoo { .. } => None,
        })
        .collect();
    items.sort();
    items.dedup();
    items
}

/// The keys of `items` RMS takes orders for at 0: the item keeps no stock (在庫設定なし), or the
/// variant takes orders when out of stock (在庫切れ時の注文受付). One item-API call per item.
async fn rakuten_orderable_at_zero(client: &RakutenClient, items: &[String]) -> Result<Vec<StockKey>, String> {
    let mut orderable = Vec::new();
    for manage_number in items {
        let Some(settings) = client.inventory_settings(manage_number).await.map_err(|e| e.to_string())? else {
            continue;
        };
        for (variant_id, variant) in &settings.variants {
            if settings.unlimited || variant.back_order {
                orderable
                    .push(StockKey::Rakuten { manage_number: manage_number.clone(), variant_id: variant_id.clone() });
            }
        }
    }
    Ok(orderable)
}

fn rakuten_write_error(error: RakutenError) -> WriteError {
    match error {
        RakutenError::Api { messages, .. } => WriteError::Refused {
            code: messages.first().map(|(code, _)| code.clone()),
            message: messages.iter().map(|(c, m)| format!("{c} {m}")).collect::<Vec<_>>().join("; "),
        },
        other if other.failure_kind() == crate::transport::FailureKind::Credentials => {
            WriteError::Refused { code: None, message: other.to_string() }
        }
        other => WriteError::Unknown(other.to_string()),
    }
}

fn yahoo_write_error(error: YahooError) -> WriteError {
    match error {
        YahooError::Api { code, message, .. } => WriteError::Refused { code: Some(code), message },
        other if other.failure_kind() == crate::transport::FailureKind::Credentials => {
            WriteError::Refused { code: None, message: other.to_string() }
        }
        other => WriteError::Unknown(other.to_string()),
    }
}
