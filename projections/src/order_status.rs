//! One row per order (status, buyer, MCF id, tracking, current problem) and the counts per
//! status, folded with the order state machine.

use crate::projector::{Projected, ProjectionError, Projector};
use events::order::{OrderEvent, OrderState, Status};
use events::store::{format_time, read_stream_until_in, SqlContext};
use events::upcast::Upcasters;
use events::{OrderKey, RecordedEvent};
use rusqlite::{params, Transaction};
use std::collections::HashMap;

pub const NAME: &str = "order_status";

/// Orders kept folded in memory between batches; beyond this the cache starts over, and a
/// missed order is re-folded from its stream (a few rows by index).
const CACHE_LIMIT: usize = 5_000;

#[derive(Default)]
pub struct OrderStatusProjector {
    cache: HashMap<String, OrderState>,
}

impl OrderStatusProjector {
    /// The order's state just before `event`, from the cache when it is exactly one version
    /// behind (another process may have projected in between), else re-folded from the log.
    fn state_before<'a>(
        cache: &'a mut HashMap<String, OrderState>,
        tx: &Transaction<'_>,
        event: &RecordedEvent,
        upcasters: &Upcasters,
    ) -> Result<&'a mut OrderState, ProjectionError> {
        let fresh = cache.get(&event.stream).is_some_and(|s| s.version == event.version - 1);
        if !fresh {
            let key = OrderKey::from_stream(&event.stream).map_err(|e| ProjectionError::event(NAME, event, e))?;
            let mut state = OrderState::new(key);
            if event.version > 1 {
                for earlier in read_stream_until_in(tx, &event.stream, event.position - 1)? {
                    let decoded = OrderEvent::decode(&earlier, upcasters)?;
                    state.apply_recorded(&decoded, earlier.version, earlier.recorded_at);
                }
            }
            cache.insert(event.stream.clone(), state);
        }
        cache
            .get_mut(&event.stream)
            .ok_or_else(|| ProjectionError::event(NAME, event, "order state vanished from the cache"))
    }
}

impl Projector for OrderStatusProjector {
    fn name(&self) -> &'static str {
        NAME
    }

    fn apply(
        &mut self,
        tx: &Transaction<'_>,
        events: &[Projected<'_>],
        upcasters: &Upcasters,
    ) -> Result<(), ProjectionError> {
        // Status of each touched order before this batch (None: new order), in first-touch order.
        let mut touched: Vec<(String, Option<Status>)> = Vec::new();
        let mut seen: HashMap<&str, ()> = HashMap::new();
        for (event, decoded) in events.iter().filter_map(|p| Some((p.recorded, p.order()?))) {
            let state = Self::state_before(&mut self.cache, tx, event, upcasters)?;
            if seen.insert(event.stream.as_str(), ()).is_none() {
                touched.push((event.stream.clone(), state.status));
            }
            state.apply_recorded(decoded, event.version, event.recorded_at);
        }
        let mut deltas: HashMap<Status, i64> = HashMap::new();
        {
            let mut upsert = tx
                .prepare_cached(
                    "INSERT INTO order_status (order_key, marketplace, order_number, status, buyer_name, item_summary, ordered_at,
                         mcf_order_id, shipping_speed, tracking_number, carrier, error, hold, cancel_pending, email_intent, email_sending, tasks_due, version, created_at, updated_at, writes_open, search_text)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22)
                     ON CONFLICT (order_key) DO UPDATE SET
                         status = excluded.status, buyer_name = excluded.buyer_name, item_summary = excluded.item_summary,
                         ordered_at = excluded.ordered_at, mcf_order_id = excluded.mcf_order_id,
                         shipping_speed = excluded.shipping_speed, tracking_number = excluded.tracking_number,
                         carrier = excluded.carrier, error = excluded.error, hold = excluded.hold,
                         cancel_pending = excluded.cancel_pending, email_intent = excluded.email_intent, email_sending = excluded.email_sending, tasks_due = excluded.tasks_due, version = excluded.version, updated_at = excluded.updated_at, writes_open = excluded.writes_open, search_text = excluded.search_text",
                )
                .context(|| "preparing the order_status upsert".into())?;
            for (stream, before) in &touched {
                let Some(state) = self.cache.get(stream) else {
                    continue;
                };
                let (Some(key), Some(status)) = (&state.key, state.status) else {
                    continue;
                };
                if *before != Some(status) {
                    if let Some(before) = before {
                        *deltas.entry(*before).or_default() -= 1;
                    }
                    *deltas.entry(status).or_default() += 1;
                }
                let details = state.details.as_ref();
                upsert
                    .execute(params![
                        key.to_string(),
                        key.marketplace.as_str(),
                        key.order_number,
                        status.as_str(),
                        details.map(|d| d.buyer.name.as_str()),
                        details.map(item_summary),
                        details.map(|d| d.ordered_at.to_rfc3339()),
                        state.mcf_order_id.as_ref().map(|id| id.as_str()),
                        state.shipping_speed.map(|s| s.as_str()),
                        state.tracking.as_ref().map(|t| t.tracking_number.as_str()),
                        state.tracking.as_ref().map(|t| t.carrier.as_str()),
                        problem(state),
                        state.hold,
                        state.cancel_requested.is_some(),
                        state.emails.iter().any(|e| e.state == events::order::EmailState::Intended),
                        state.emails.iter().any(|e| e.state == events::order::EmailState::Sending),
                        tasks_due(state),
                        state.version,
                        state.created_at.map(format_time),
                        state.updated_at.map(format_time),
                        writes_open(state),
                        search_text(state),
                    ])
                    .context(|| format!("writing the status row of {key}"))?;
            }
        }
        apply_count_deltas(tx, deltas)?;
        if self.cache.len() > CACHE_LIMIT {
            self.cache.clear();
        }
        Ok(())
    }

    fn forget_cache(&mut self) {
        self.cache.clear();
    }
}

/// "有機緑茶 100g ×2 他1点".
pub fn item_summary(details: &events::order::OrderDetails) -> String {
    let Some(first) = details.items.first() else {
        return String::new();
    };
    let mut text = format!("{} ×{}", first.title, first.quantity);
    if details.items.len() > 1 {
        text.push_str(&format!(" 他{}点", details.items.len() - 1));
    }
    text
}

/// The marketplace writes without an outcome or refused, space-separated; None when there are
/// none (the index is partial).
fn writes_open(state: &OrderState) -> Option<String> {
    let open = state.writes_open();
    (!open.is_empty()).then(|| open.iter().map(|(write, _)| write.as_str()).collect::<Vec<_>>().join(" "))
}

/// The manual tasks due, space-separated; None when there are none (the to-do index is partial).
fn tasks_due(state: &OrderState) -> Option<String> {
    let due = events::order::tasks::manual_tasks_due(state);
    (!due.is_empty()).then(|| due.iter().map(|t| t.as_str()).collect::<Vec<_>>().join(" "))
}

/// Everything on the order's label a search may be for: buyer, phones and email, the delivery
/// address (and the corrected one), items and SKUs, MCF id, tracking number, memos. Phones and
/// tracking numbers also without their hyphens, as people type them either way.
pub fn search_text(state: &OrderState) -> String {
    let mut terms: Vec<String> = Vec::new();
    let digits = |text: &str| text.chars().filter(char::is_ascii_digit).collect::<String>();
    let with_digits = |terms: &mut Vec<String>, text: &str| {
        terms.push(text.to_owned());
        let only = digits(text);
        if only.len() >= 4 && only != text {
            terms.push(only);
        }
    };
    if let Some(d) = &state.details {
        terms.push(d.buyer.name.clone());
        terms.extend(d.buyer.email.clone());
        if let Some(phone) = &d.buyer.phone {
            with_digits(&mut terms, phone);
        }
        for item in &d.items {
            terms.push(item.title.clone());
            terms.push(item.marketplace_sku.clone());
        }
    }
    for address in state.details.iter().map(|d| &d.ship_to).chain(&state.corrected_address) {
        terms.push(address.name.clone());
        terms.push(address.postal_code.clone());
        terms.push(address.one_line());
        if let Some(phone) = &address.phone {
            with_digits(&mut terms, phone);
        }
    }
    terms.extend(state.allotted.iter().map(|line| line.seller_sku.to_string()));
    terms.extend(state.mcf_order_id.iter().map(|id| id.as_str().to_owned()));
    if let Some(tracking) = &state.tracking {
        with_digits(&mut terms, &tracking.tracking_number);
        terms.push(tracking.carrier.clone());
    }
    terms.extend(state.memos.iter().cloned());
    terms.join(" ")
}

/// Where a problem arose, in the operator's words.
fn stage_label(stage: &str) -> &str {
    match stage {
        "receive" => "受付",
        "check" => "在庫確認",
        "ship" | "amazon.getFulfillmentPreview" => "出荷依頼",
        "monitor" => "監視",
        "notify" => "出荷通知",
        "cancel" => "キャンセル",
        other => other,
    }
}

/// What is wrong with the order right now, for the operator (in Japanese; an outside system's
/// own message is shown beside it, marked as theirs).
pub fn problem(state: &OrderState) -> Option<String> {
    match state.status? {
        Status::Error => state.error.as_ref().map(|e| match &e.code {
            Some(code) => format!("{}: [{code}] {}", stage_label(&e.stage), e.message),
            None => format!("{}: {}", stage_label(&e.stage), e.message),
        }),
        Status::OutOfStock => Some(format!(
            "在庫不足: {}",
            state
                .shortage
                .iter()
                .map(|s| format!("{} 必要 {} / 在庫 {}", s.seller_sku, s.needed, s.available))
                .collect::<Vec<_>>()
                .join("、")
        )),
        Status::DateUnavailable => state.delivery_slot_unavailable.as_ref().map(|u| {
            format!(
                "指定の配送枠 {} はAmazonで選べません（Amazonが提示した枠: {}）",
                u.requested,
                if u.offered.is_empty() { "なし".to_owned() } else { u.offered.join(", ") }
            )
        }),
        _ => None,
    }
}

/// Moves each status's count by its delta.
fn apply_count_deltas(tx: &Transaction<'_>, deltas: HashMap<Status, i64>) -> Result<(), ProjectionError> {
    let mut count = tx
        .prepare_cached(
            "INSERT INTO status_counts (status, count) VALUES (?1, ?2)
             ON CONFLICT (status) DO UPDATE SET count = count + excluded.count",
        )
        .context(|| "preparing the count update".into())?;
    for (status, delta) in deltas.into_iter().filter(|(_, d)| *d != 0) {
        count.execute(params![status.as_str(), delta]).context(|| format!("counting {status}"))?;
    }
    // A status nobody is in has no row, however the batches fell.
    tx.execute("DELETE FROM status_counts WHERE count = 0", []).context(|| "dropping empty counts".into())?;
    Ok(())
}
