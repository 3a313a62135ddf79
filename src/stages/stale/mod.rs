//! stale (and the admin's mail): raises alerts from what the ledger shows, then sends what is
//! due. Every alert is intended before it is sent and marked sending right before the SMTP
//! call, so none goes out twice; without SMTP the alerts stay recorded and visible.
//! - a source outage (started, and recovered with the count backfilled), a credential about
//!   to expire, a signature the marketplace refused;
//! - orders SHIPPING for longer than SHIPPING_STALE_HOURS (each order warned once);
//! - the daily summary of orders waiting on an operator.

use crate::mail::smtp::Mailer;
use crate::stages::context::StageContext;
use crate::stages::report::{StageError, StageReport};
pub use crate::stages::settings::{AlertSettings, ConfiguredExpiry};
pub use crate::stages::sources::AMAZON_HEALTH_STREAM;
use chrono::{DateTime, Duration, Utc};
use events::envelope::{Actor, ExpectedVersion, Meta, NewEvent};
use events::order::Status;
use events::source::SourceEvent;
use events::system::SystemEvent;
use events::{Marketplace, OrderKey};
use projections::queries::{self, OrderFilter};
use projections::{Ledger, LedgerError};
use std::collections::{BTreeMap, BTreeSet};

pub use events::system::{AlertIntended, AlertOutcome, SYSTEM_STREAM};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AlertState {
    Intended,
    Sending,
    Sent,
    Failed,
}

struct Alerts {
    intents: BTreeMap<String, AlertIntended>,
    states: BTreeMap<String, AlertState>,
}

fn alerts(ledger: &Ledger) -> Result<Alerts, LedgerError> {
    let mut intents = BTreeMap::new();
    let mut states = BTreeMap::new();
    let kinds = ["AlertIntended", "AlertSending", "AlertSent", "AlertFailed"];
    let upcasters = events::ledger_event::upcasters();
    for event in ledger.store().read_stream_of_types(SYSTEM_STREAM, &kinds)? {
        let (alert_id, state) = match SystemEvent::decode(&event, &upcasters)? {
            SystemEvent::AlertIntended(intent) => {
                let id = intent.alert_id.clone();
                intents.insert(id.clone(), intent);
                (id, AlertState::Intended)
            }
            SystemEvent::AlertSending(outcome) => (outcome.alert_id, AlertState::Sending),
            SystemEvent::AlertSent(outcome) => (outcome.alert_id, AlertState::Sent),
            SystemEvent::AlertFailed(outcome) => (outcome.alert_id, AlertState::Failed),
            _ => continue,
        };
        states.insert(alert_id, state);
    }
    Ok(Alerts { intents, states })
}

fn system_event(event: SystemEvent) -> NewEvent {
    event.to_new_event(Meta::by(Actor::reactor("stale")))
}

fn intend(ledger: &mut Ledger, intent: AlertIntended) -> Result<bool, LedgerError> {
    let key = format!("alert:{}", intent.alert_id);
    let outcome = ledger.append(
        SYSTEM_STREAM,
        ExpectedVersion::Any,
        &[system_event(SystemEvent::AlertIntended(intent.clone())).idempotent(key)],
    )?;
    if !outcome.nothing_new() {
        tracing::warn!(alert = intent.alert_id, kind = intent.kind, "alert raised");
    }
    Ok(!outcome.nothing_new())
}

/// Raises an alert about one recorded event, unless it was raised already (the history of a
/// stream is gone through every cycle; only what is new is appended).
fn raise_once(
    ledger: &mut Ledger,
    known: &Alerts,
    alert_id: String,
    (kind, subject, body): (&str, String, String),
) -> Result<usize, LedgerError> {
    if known.intents.contains_key(&alert_id) {
        return Ok(0);
    }
    let intent = AlertIntended { alert_id, kind: kind.into(), subject, body, orders: vec![] };
    Ok(usize::from(intend(ledger, intent)?))
}

fn jst(time: DateTime<Utc>) -> String {
    time.with_timezone(&events::clock::jst()).format("%Y-%m-%d %H:%M").to_string()
}

/// Alerts from every `poll-*` stream's outages, expiring credentials and refused signatures.
fn raise_source_alerts(ledger: &mut Ledger, known: &Alerts) -> Result<usize, LedgerError> {
    let mut raised = 0;
    for stream in ledger.store().streams_in_category("poll")? {
        let source = stream.trim_start_matches("poll-").to_owned();
        let kinds = ["OutageStarted", "OutageEnded", "CredentialExpiring", "SignatureRejected", "CredentialRefused"];
        for event in ledger.store().read_stream_of_types(&stream, &kinds)? {
            let decoded = SourceEvent::decode(&event, &events::ledger_event::upcasters())?;
            let (kind, subject, body) = match decoded {
                SourceEvent::OutageStarted(o) => (
                    "outage_started",
                    format!("[mcf-ledger] {source}: 障害発生 (failing since {} JST)", jst(o.failing_since)),
                    format!("{source} has been failing since {} JST.\nLast error: {}\n\nNothing is lost: when it recovers, the next cycle imports the missed window by itself.", jst(o.failing_since), o.error),
                ),
                SourceEvent::OutageEnded(o) => (
                    "outage_ended",
                    format!("[mcf-ledger] {source}: 復旧 ({} orders backfilled)", o.backfilled),
                    format!("{source} recovered at {} JST after failing since {} JST.\n{} orders from the outage window were imported.", jst(o.recovered_at), jst(o.failing_since), o.backfilled),
                ),
                SourceEvent::CredentialExpiring(c) => (
                    "credential_expiring",
                    format!("[mcf-ledger] {} expires in {} days", c.credential, c.days_left),
                    format!("{} expires on {} ({} days left). Renew it and update the configuration.", c.credential, c.expires_on, c.days_left),
                ),
                SourceEvent::CredentialRefused(c) => (
                    "credential_refused",
                    format!("[mcf-ledger] {source}: 認証エラー (credentials refused)"),
                    format!("{source} refused our credentials: {}\n\nThis does not recover by itself: renew the key, token or consent (see `mcf-ledger check-config`), then the next cycle reads the source again and backfills what was missed. This alert repeats once a day while it lasts.", c.error),
                ),
                SourceEvent::SignatureRejected(s) => (
                    "signature_rejected",
                    format!("[mcf-ledger] {source}: public-key signature not accepted ({})", s.status),
                    format!("{source} answered X-SWS-Authorize-Status: {}. The order APIs stop 12 hours after consent without it: check YAHOO_PUBLIC_KEY and its version.", s.status),
                ),
                _ => continue,
            };
            raised += raise_once(ledger, known, format!("source:{}", event.event_id), (kind, subject, body))?;
        }
    }
    Ok(raised)
}

/// Alerts from the stock sync: a plan the brakes held, and listings a write could not set
/// (an unknown key, a listing orderable at 0), each once.
fn raise_stock_alerts(ledger: &mut Ledger, known: &Alerts) -> Result<usize, LedgerError> {
    use events::stock::{published_stream, StockEvent, STOCK_SYNC_STREAM};
    let upcasters = events::ledger_event::upcasters();
    let mut raised = 0;
    let streams =
        [STOCK_SYNC_STREAM.to_owned(), published_stream(Marketplace::Rakuten), published_stream(Marketplace::Yahoo)];
    for stream in streams {
        for event in ledger.store().read_stream_of_types(&stream, &["StockSyncHeld", "StockWriteDone"])? {
            let (kind, subject, body) = match StockEvent::decode(&event, &upcasters)? {
                StockEvent::StockSyncHeld(held) => (
                    "stock_held",
                    "[mcf-ledger] 在庫連携を止めました：確認が必要です (stock sync held)".to_owned(),
                    format!(
                        "FBAの在庫の読み取りが安全のための条件に当たったため、モールへの在庫の書き込みを止めています。\n\n{}\n\n内容を確かめてから、管理画面の在庫ページの「承認して反映」か `mcf-ledger stock confirm` で反映してください。それまでモールの在庫は前回のままです。",
                        held.reasons.join("\n")
                    ),
                ),
                StockEvent::StockWriteDone(done) if done.problems.iter().any(|p| !p.write_again) => (
                    "stock_problems",
                    format!("[mcf-ledger] {stream}: 在庫を反映できない商品があります"),
                    done.problems
                        .iter()
                        .filter(|p| !p.write_again)
                        .map(|p| format!("{} ({}): {}", p.marketplace_sku, p.key, p.problem))
                        .chain(["\nキーの誤りは SKUマスター（master.xlsx）のモールのキーを直してください。次の実行で書き直し、読み返して確かめます。\nモールの商品設定（在庫切れ時の注文受付・超過購入可など）は、モールの管理画面で直してください。その商品の在庫数が次に変わったときに書き直して確かめます。\n各行の状態は管理画面の在庫連携ページにあります。".to_owned()])
                        .collect::<Vec<_>>()
                        .join("\n"),
                ),
                _ => continue,
            };
            raised += raise_once(ledger, known, format!("stock:{}", event.event_id), (kind, subject, body))?;
        }
    }
    Ok(raised)
}

/// One warning listing the orders newly SHIPPING for longer than the limit.
fn raise_stale(ledger: &mut Ledger, known: &Alerts, stale_after: Duration) -> Result<usize, LedgerError> {
    let warned: BTreeSet<&String> =
        known.intents.values().filter(|a| a.kind == "stale").flat_map(|a| a.orders.iter()).collect();
    let now = ledger.store().now();
    let mut stale = Vec::new();
    for row in queries::list_orders(
        ledger.store().connection(),
        &OrderFilter { status: Some(Status::Shipping), ..Default::default() },
    )? {
        if warned.contains(&row.order) {
            continue;
        }
        let Ok(key) = row.order.parse::<OrderKey>() else { continue };
        let state = ledger.order_state(&key)?;
        if let Some(since) = state.shipping_since.filter(|since| now - *since > stale_after) {
            stale.push((row.order.clone(), since, row.mcf_order_id.clone().unwrap_or_default()));
        }
    }
    if stale.is_empty() {
        return Ok(0);
    }
    let lines: Vec<String> = stale
        .iter()
        .map(|(order, since, mcf)| format!("- {order} (MCF {mcf}) SHIPPING since {} JST", jst(*since)))
        .collect();
    let intent = AlertIntended {
        alert_id: format!("stale:{}:{}", now.timestamp(), stale[0].0),
        kind: "stale".into(),
        subject: format!("[mcf-ledger] 滞留警告: {} orders SHIPPING for more than {} hours", stale.len(), stale_after.num_hours()),
        body: format!("These orders have been SHIPPING for more than {} hours without tracking. Please check them in Seller Central.\n\n{}", stale_after.num_hours(), lines.join("\n")),
        orders: stale.into_iter().map(|(order, _, _)| order).collect(),
    };
    Ok(usize::from(intend(ledger, intent)?))
}

/// Once a day: the orders waiting on an operator.
fn raise_daily_summary(ledger: &mut Ledger) -> Result<usize, LedgerError> {
    let today = ledger.store().now().with_timezone(&events::clock::jst()).date_naive();
    let mut lines = Vec::new();
    let mut orders = Vec::new();
    for status in [Status::Error, Status::OutOfStock, Status::DateUnavailable] {
        for row in queries::list_orders(
            ledger.store().connection(),
            &OrderFilter { status: Some(status), ..Default::default() },
        )? {
            lines.push(format!("- {} {}: {}", row.order, row.status, row.error.as_deref().unwrap_or("")));
            orders.push(row.order);
        }
    }
    if orders.is_empty() {
        return Ok(0);
    }
    let intent = AlertIntended {
        alert_id: format!("daily:{today}"),
        kind: "daily_summary".into(),
        subject: format!("[mcf-ledger] {today}: {} orders need you", orders.len()),
        body: format!(
            "Orders waiting on an operator (fix the cause, change the status, the next cycle resumes):\n\n{}",
            lines.join("\n")
        ),
        orders,
    };
    Ok(usize::from(intend(ledger, intent)?))
}

/// The stale stage of a cycle.
pub async fn run(ctx: &mut StageContext<'_>) -> Result<Vec<StageReport>, StageError> {
    let services = ctx.services;
    Ok(vec![alert(ctx.ledger, services.mailer.as_ref(), &services.alerts, &services.poll).await?])
}

/// Raises the alerts due and sends them to the admin.
pub async fn alert(
    ledger: &mut Ledger,
    mailer: Option<&Mailer>,
    settings: &AlertSettings,
    poll: &crate::stages::sources::PollSettings,
) -> Result<StageReport, StageError> {
    let mut report = StageReport::new("stale");
    for expiry in &settings.credential_expiries {
        let ConfiguredExpiry { stream, credential, expires_on } = expiry;
        crate::stages::sources::record_credential_expiry(ledger, stream, credential, *expires_on, poll)?;
    }
    let raised_before = alerts(ledger)?;
    report.advanced += raise_source_alerts(ledger, &raised_before)?;
    report.advanced += raise_stock_alerts(ledger, &raised_before)?;
    let known = alerts(ledger)?;
    report.needs_operator += raise_stale(ledger, &known, settings.stale_after)?;
    report.advanced += raise_daily_summary(ledger)?;
    let Some(mailer) = mailer else {
        tracing::info!("SMTP is not configured: alerts stay recorded, unsent");
        return Ok(report);
    };
    if let Some(admin) = &settings.admin_email {
        let known = alerts(ledger)?;
        for (alert_id, state) in &known.states {
            if !matches!(state, AlertState::Intended | AlertState::Failed) {
                continue;
            }
            let Some(intent) = known.intents.get(alert_id) else { continue };
            let outcome = AlertOutcome { alert_id: alert_id.clone(), error: None };
            ledger.append(
                SYSTEM_STREAM,
                ExpectedVersion::Any,
                &[system_event(SystemEvent::AlertSending(outcome.clone()))],
            )?;
            match mailer.send(admin, &intent.subject, &intent.body).await {
                Ok(()) => {
                    ledger.append(
                        SYSTEM_STREAM,
                        ExpectedVersion::Any,
                        &[system_event(SystemEvent::AlertSent(outcome))],
                    )?;
                    report.advanced += 1;
                }
                Err(error) => {
                    tracing::warn!(alert = alert_id, %error, "alert not sent; retried next cycle");
                    let failed = AlertOutcome { alert_id: alert_id.clone(), error: Some(error.to_string()) };
                    ledger.append(
                        SYSTEM_STREAM,
                        ExpectedVersion::Any,
                        &[system_event(SystemEvent::AlertFailed(failed))],
                    )?;
                    report.deferred += 1;
                }
            }
        }
    }
    Ok(report)
}
