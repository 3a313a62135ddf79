//! `mcf-ledger order …`: what an operator does from a terminal.

use super::{open_ledger, CommandResult, Failure};
use clap::Subcommand;
use events::envelope::{Actor, Meta};
use events::order::{operator::allowed_targets, OrderState, Status};
use events::store::OpenMode;
use events::{Marketplace, OrderKey};
use projections::queries::{self, OrderFilter, OrderRow};
use serde_json::json;
use std::path::Path;

#[derive(Debug, Subcommand)]
pub enum OrderCommand {
    /// Orders, most recently changed first, with counts per status.
    List {
        #[arg(long)]
        status: Option<Status>,
        #[arg(long)]
        marketplace: Option<Marketplace>,
        /// Order number, buyer name or MCF id (part of it).
        #[arg(long)]
        search: Option<String>,
        #[arg(long, default_value_t = 100)]
        limit: usize,
        #[arg(long)]
        json: bool,
    },
    /// One order: buyer, delivery, items, MCF, tracking, problem, allowed actions, timeline.
    Show {
        order: OrderKey,
        #[arg(long)]
        json: bool,
    },
    /// An operator's status change (recorded with your OS user as the actor).
    SetStatus {
        order: OrderKey,
        status: Status,
        #[arg(long)]
        reason: String,
        /// Apply only if the order is still at this version (as shown by `order show`).
        #[arg(long)]
        expect_version: Option<i64>,
    },
}

pub fn run(command: OrderCommand, database: &Path) -> CommandResult {
    match command {
        OrderCommand::List { status, marketplace, search, limit, json } => {
            list(database, OrderFilter { status, marketplace, search, limit: Some(limit), ..Default::default() }, json)
        }
        OrderCommand::Show { order, json } => show(database, &order, json),
        OrderCommand::SetStatus { order, status, reason, expect_version } => {
            set_status(database, &order, status, &reason, expect_version)
        }
    }
}

/// The `--json` contract of `order list` and `order show`.
fn row_json(row: &OrderRow) -> serde_json::Value {
    json!({
        "order": row.order,
        "marketplace": row.marketplace,
        "order_number": row.order_number,
        "status": row.status,
        "buyer_name": row.buyer_name,
        "item_summary": row.item_summary,
        "ordered_at": row.ordered_at,
        "mcf_order_id": row.mcf_order_id,
        "shipping_speed": row.shipping_speed,
        "tracking_number": row.tracking_number,
        "carrier": row.carrier,
        "error": row.error,
        "hold": row.hold,
        "cancel_pending": row.cancel_pending,
        "version": row.version,
        "created_at": row.created_at,
        "updated_at": row.updated_at,
    })
}

fn list(database: &Path, filter: OrderFilter, as_json: bool) -> CommandResult {
    let ledger = open_ledger(database, OpenMode::MustExist)?;
    let conn = ledger.store().connection();
    let rows = queries::list_orders(conn, &filter)?;
    if as_json {
        let list: Vec<_> = rows.iter().map(row_json).collect();
        println!("{}", serde_json::to_string_pretty(&list)?);
        return Ok(());
    }
    say!("{:<40} {:<22} {:<16} {:<30} {:<16} UPDATED", "ORDER", "STATUS", "BUYER", "MCF ORDER", "TRACKING");
    for row in &rows {
        say!(
            "{:<40} {:<22} {:<16} {:<30} {:<16} {}",
            row.order,
            row.status,
            truncate(row.buyer_name.as_deref().unwrap_or("-"), 14),
            row.mcf_order_id.as_deref().unwrap_or("-"),
            row.tracking_number.as_deref().unwrap_or("-"),
            super::jst_text(&row.updated_at)
        );
    }
    let counts = queries::status_counts(conn)?;
    let summary: Vec<String> = counts.iter().filter(|(_, n)| *n > 0).map(|(s, n)| format!("{s} {n}")).collect();
    say!(
        "{} shown; all orders: {}",
        rows.len(),
        if summary.is_empty() { "none".to_owned() } else { summary.join(", ") }
    );
    Ok(())
}

fn truncate(text: &str, chars: usize) -> String {
    if text.chars().count() <= chars {
        text.to_owned()
    } else {
        text.chars().take(chars.saturating_sub(1)).chain(['…']).collect()
    }
}

fn show(database: &Path, order: &OrderKey, as_json: bool) -> CommandResult {
    let ledger = open_ledger(database, OpenMode::MustExist)?;
    let conn = ledger.store().connection();
    let Some(row) = queries::get_order(conn, &order.to_string())? else {
        return Err(Failure::new(format!("注文 {order} は台帳にありません")));
    };
    let state = ledger.order_state(order)?;
    let history = projections::order_history::order_history(conn, order)?;
    let allowed: Vec<&str> = state.status.map(allowed_targets).unwrap_or_default().iter().map(|s| s.as_str()).collect();
    if as_json {
        let mut value = row_json(&row);
        let details = state.details.as_ref();
        value["buyer"] = json!(details.map(|d| &d.buyer));
        value["ship_to"] = json!(state.delivery_address());
        value["items"] = json!(details.map(|d| &d.items));
        value["allotted"] = json!(state.allotted);
        value["settlement"] = json!(details.map(|d| &d.settlement));
        value["delivery_request"] = json!(details.and_then(|d| d.delivery_request.as_ref()));
        value["premium_deadline"] = json!(details.and_then(|d| d.premium_deadline));
        value["speed_reason"] = json!(state.speed_reason);
        value["allowed_statuses"] = json!(allowed);
        value["history"] = json!(history);
        println!("{}", serde_json::to_string_pretty(&value)?);
        return Ok(());
    }
    print_order(&row, &state, &allowed);
    say!("timeline:");
    for entry in history {
        say!("  #{:<6} {}  {:<18} {}", entry.position, super::jst_text(&entry.recorded_at), entry.actor, entry.summary);
    }
    Ok(())
}

fn print_order(row: &OrderRow, state: &OrderState, allowed: &[&str]) {
    let status = state.status.map_or("", |s| s.label());
    say!("order      {} (version {})", row.order, row.version);
    say!(
        "status     {} {status}{}",
        row.status,
        if row.cancel_pending { " (cancellation pending at Amazon)" } else { "" }
    );
    if let Some(error) = &row.error {
        say!("problem    {error}");
    }
    if let Some(hold) = &row.hold {
        say!("held       {hold}");
    }
    if let Some(details) = &state.details {
        say!("ordered    {}", super::jst(details.ordered_at.with_timezone(&chrono::Utc)));
        say!("buyer      {}", details.buyer.name);
        say!("settlement {}", details.settlement.name);
        for item in &details.items {
            say!("item       {} ×{} ({}) {}円", item.title, item.quantity, item.marketplace_sku, item.unit_price_yen);
        }
        if let Some(request) = &details.delivery_request {
            say!("delivery   {} {}", request.date, request.slot.as_deref().unwrap_or("(any time)"));
        }
        if let Some(deadline) = details.premium_deadline {
            say!("premium    arrive by {deadline}");
        }
    }
    if let Some(address) = state.delivery_address() {
        say!(
            "ship to    {} {}{}",
            address.name,
            address.one_line(),
            if state.corrected_address.is_some() { " (corrected)" } else { "" }
        );
    }
    say!("mcf order  {} {}", row.mcf_order_id.as_deref().unwrap_or("-"), row.shipping_speed.as_deref().unwrap_or(""));
    if let Some(reason) = &state.speed_reason {
        say!("speed why  {reason}");
    }
    say!("tracking   {} {}", row.carrier.as_deref().unwrap_or("-"), row.tracking_number.as_deref().unwrap_or(""));
    say!("may change to: {}", if allowed.is_empty() { "nothing (final)".to_owned() } else { allowed.join(", ") });
}

/// The operator: the OS user running the command, from the environment, else the account of
/// the process's uid (cron and `sudo -i` may leave $USER unset).
fn os_user() -> String {
    ["USER", "LOGNAME", "USERNAME"]
        .iter()
        .find_map(|name| std::env::var(name).ok().filter(|v| !v.is_empty()))
        .or_else(|| whoami::fallible::username().ok().filter(|n| !n.is_empty()))
        .unwrap_or_else(|| "unknown".to_owned())
}

fn set_status(
    database: &Path,
    order: &OrderKey,
    to: Status,
    reason: &str,
    expect_version: Option<i64>,
) -> CommandResult {
    let mut ledger = open_ledger(database, OpenMode::MustExist)?;
    let actor = Actor::operator(&os_user());
    let outcome = ledger.operator_set_status(order, to, reason, Meta::by(actor.clone()), expect_version)?;
    let state = ledger.order_state(order)?;
    tracing::info!(order = %order, to = %to, actor = %actor, "operator status change recorded");
    let now = state.status.map_or_else(String::new, |s| s.to_string());
    if to == Status::Cancelled && state.cancel_requested.is_some() {
        say!("{order}: cancellation requested (version {}); the MCF order is cancelled by the next cycle, then the order becomes CANCELLED", outcome.stream_version);
    } else {
        say!("{order}: {now} (version {})", outcome.stream_version);
    }
    Ok(())
}
