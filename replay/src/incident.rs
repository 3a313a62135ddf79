//! `replay incident`: what happened to the shop in a time window, from the events alone. The
//! story an admin needs after a marketplace outage (seed 003): which sources failed and when,
//! whether anyone was told, which orders arrived meanwhile and when the system saw each, which
//! were backfilled, which stood still longer than the cycle allows, which outside writes were
//! retried or left for an operator, and what operators did.

use crate::ReplayError;
use chrono::{DateTime, Duration, Utc};
use events::order::{DetectionSource, EmailState, OrderEvent, OrderState, Status};
use events::source::SourceEvent;
use events::system::{FailureKind, SystemEvent};
use events::{LedgerEvent, OrderKey};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

/// How long an order may stand in a status the system moves by itself before the report
/// names it: two cycles and a margin.
pub fn stuck_threshold(cycle_interval: Duration) -> Duration {
    cycle_interval * 2 + Duration::minutes(5)
}

/// One uninterrupted run of failures of a source.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FailingPeriod {
    pub source: String,
    pub first_failure: DateTime<Utc>,
    pub last_failure: DateTime<Utc>,
    pub failures: u32,
    pub kinds: BTreeSet<FailureKind>,
    /// The distinct errors, first seen first (at most five).
    pub errors: Vec<String>,
    /// When the outage was declared (alerted), if it was.
    pub outage_declared_at: Option<DateTime<Utc>>,
    /// The first successful read after it, and the orders that read brought in.
    pub recovered_at: Option<DateTime<Utc>>,
    pub backfilled: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AlertRow {
    pub at: DateTime<Utc>,
    pub kind: String,
    pub subject: String,
    pub sent_at: Option<DateTime<Utc>>,
    pub failed: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ArrivedOrder {
    pub order: String,
    pub ordered_at: Option<DateTime<Utc>>,
    pub first_seen_at: DateTime<Utc>,
    pub mail_detected_at: Option<DateTime<Utc>>,
    pub api_detected_at: Option<DateTime<Utc>>,
    /// Read from the marketplace only when it recovered from a failure that covered the order.
    pub backfilled: bool,
    pub status_now: Option<Status>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StuckOrder {
    pub order: String,
    pub status: Status,
    pub from: DateTime<Utc>,
    /// When it moved on; None when it still stood there at the end of the window.
    pub until: Option<DateTime<Utc>>,
    pub minutes: i64,
    /// Sources failing meanwhile: most likely why.
    pub while_failing: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SideEffect {
    pub order: String,
    pub at: DateTime<Utc>,
    /// What happened, in the operator's words.
    pub what: String,
    /// Left for an operator (true), or settled by the system later (false).
    pub for_operator: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OperatorAction {
    pub at: DateTime<Utc>,
    pub actor: String,
    pub order: String,
    pub what: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IncidentReport {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub events: u64,
    pub failing: Vec<FailingPeriod>,
    pub alerts: Vec<AlertRow>,
    pub arrived: Vec<ArrivedOrder>,
    pub stuck: Vec<StuckOrder>,
    pub side_effects: Vec<SideEffect>,
    pub operator_actions: Vec<OperatorAction>,
}

impl IncidentReport {
    pub fn backfilled(&self) -> usize {
        self.arrived.iter().filter(|o| o.backfilled).count()
    }
}

/// An order as the scan sees it.
struct OrderTrace {
    state: OrderState,
    first_seen_at: DateTime<Utc>,
    mail_at: Option<DateTime<Utc>>,
    api_at: Option<DateTime<Utc>>,
    /// (since, status) of every status it took, in order.
    statuses: Vec<(DateTime<Utc>, Status)>,
    /// An MCF create intended and not yet answered: since when.
    create_pending: Option<DateTime<Utc>>,
}

/// Builds the report of [`from`, `to`] from every event up to `to`.
pub fn incident(
    conn: &rusqlite::Connection,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    cycle_interval: Duration,
) -> Result<IncidentReport, ReplayError> {
    if to <= from {
        return Err(ReplayError::Invalid(format!("the window ends ({to}) before it starts ({from})")));
    }
    let mut report = IncidentReport {
        from,
        to,
        events: 0,
        failing: vec![],
        alerts: vec![],
        arrived: vec![],
        stuck: vec![],
        side_effects: vec![],
        operator_actions: vec![],
    };
    let Reading { open, mut closed, alerts, orders } = read_log(conn, &mut report)?;
    closed.extend(open.into_values());
    closed.retain(|p| p.first_failure <= to && p.recovered_at.unwrap_or(p.last_failure) >= from);
    closed.sort_by_key(|p| (p.first_failure, p.source.clone()));
    report.failing = closed;
    report.alerts = alerts.into_values().collect();
    report.alerts.sort_by_key(|a| a.at);
    let threshold = stuck_threshold(cycle_interval);
    for (stream, trace) in &orders {
        let order = stream.trim_start_matches("order-").to_owned();
        arrived(&mut report, &order, trace);
        stuck(&mut report, &order, trace, threshold);
        left_in_doubt(&mut report, &order, trace, to - threshold);
    }
    report.side_effects.sort_by_key(|s| s.at);
    report.arrived.sort_by_key(|o| (o.ordered_at.unwrap_or(o.first_seen_at), o.order.clone()));
    report.stuck.sort_by_key(|s| (s.from, s.order.clone()));
    report.operator_actions.sort_by_key(|a| a.at);
    Ok(report)
}

/// What the log says up to the window's end: each source's failing periods, the alerts, and
/// every order's trace.
struct Reading {
    open: BTreeMap<String, FailingPeriod>,
    closed: Vec<FailingPeriod>,
    alerts: BTreeMap<String, AlertRow>,
    orders: BTreeMap<String, OrderTrace>,
}

/// Folds the log up to `report.to`, counting the window's events and noting what happened in it.
fn read_log(conn: &rusqlite::Connection, report: &mut IncidentReport) -> Result<Reading, ReplayError> {
    let (from, to) = (report.from, report.to);
    let upcasters = events::ledger_event::upcasters();
    let mut reading =
        Reading { open: BTreeMap::new(), closed: Vec::new(), alerts: BTreeMap::new(), orders: BTreeMap::new() };
    let in_window = |at: DateTime<Utc>| at >= from && at <= to;
    let mut failure: Option<ReplayError> = None;
    events::store::for_each_after_in(conn, 0, None, &mut |recorded| {
        if failure.is_some() || recorded.recorded_at > to {
            return Ok(());
        }
        let at = recorded.recorded_at;
        let event = match LedgerEvent::decode(&recorded, &upcasters) {
            Ok(event) => event,
            Err(error) => {
                failure = Some(ReplayError::Decode(error));
                return Ok(());
            }
        };
        if in_window(at) {
            report.events += 1;
        }
        match event {
            LedgerEvent::Source(source) => {
                follow_source(&mut reading.open, &mut reading.closed, &recorded.stream, &source, at);
            }
            LedgerEvent::System(system) => follow_alerts(&mut reading.alerts, system, at, in_window(at)),
            LedgerEvent::Order(order) => {
                let Ok(key) = OrderKey::from_stream(&recorded.stream) else { return Ok(()) };
                let trace = reading.orders.entry(recorded.stream.clone()).or_insert_with(|| OrderTrace {
                    state: OrderState::new(key.clone()),
                    first_seen_at: at,
                    mail_at: None,
                    api_at: None,
                    statuses: vec![],
                    create_pending: None,
                });
                let actor = recorded.meta.actor.as_str().to_owned();
                follow_order(trace, &order, recorded.version, at, &actor, in_window(at), report, &key);
            }
            _ => {}
        }
        Ok(())
    })?;
    match failure {
        Some(error) => Err(error),
        None => Ok(reading),
    }
}

/// Outside writes of the order still in doubt at the window's end (an MCF create for longer
/// than a cycle should take, a customer email whose outcome is unknown).
fn left_in_doubt(report: &mut IncidentReport, order: &str, trace: &OrderTrace, pending_before: DateTime<Utc>) {
    if let Some(since) = trace.create_pending.filter(|since| *since <= pending_before) {
        report.side_effects.push(SideEffect {
            order: order.to_owned(),
            at: since,
            what: "MCF出荷依頼の結果が未確認のまま (次のサイクルがAmazonに確認します)".into(),
            for_operator: false,
        });
    }
    for email in trace.state.emails.iter().filter(|e| e.state == EmailState::Sending) {
        report.side_effects.push(SideEffect {
            order: order.to_owned(),
            at: trace.statuses.last().map_or(trace.first_seen_at, |(since, _)| *since),
            what: format!("顧客メール {} の送信結果が不明: 二重送信しないよう自動では再送しません", email.kind),
            for_operator: true,
        });
    }
}

fn follow_source(
    open: &mut BTreeMap<String, FailingPeriod>,
    closed: &mut Vec<FailingPeriod>,
    stream: &str,
    event: &SourceEvent,
    at: DateTime<Utc>,
) {
    match event {
        SourceEvent::PollFailed(failed) => {
            let period = open.entry(stream.to_owned()).or_insert_with(|| FailingPeriod {
                source: stream.to_owned(),
                first_failure: at,
                last_failure: at,
                failures: 0,
                kinds: BTreeSet::new(),
                errors: vec![],
                outage_declared_at: None,
                recovered_at: None,
                backfilled: None,
            });
            period.last_failure = at;
            period.failures += 1;
            period.kinds.insert(failed.kind);
            if period.errors.len() < 5 && !period.errors.contains(&failed.error) {
                period.errors.push(failed.error.clone());
            }
        }
        SourceEvent::OutageStarted(_) => {
            if let Some(period) = open.get_mut(stream) {
                period.outage_declared_at.get_or_insert(at);
            }
        }
        SourceEvent::PollSucceeded(ok) => {
            if let Some(mut period) = open.remove(stream) {
                period.recovered_at = Some(at);
                period.backfilled = Some(ok.orders_new);
                closed.push(period);
            }
        }
        SourceEvent::OutageEnded(ended) => {
            if let Some(period) = closed.iter_mut().rev().find(|p| p.source == stream) {
                period.backfilled = Some(ended.backfilled);
            }
        }
        _ => {}
    }
}

fn follow_alerts(alerts: &mut BTreeMap<String, AlertRow>, event: SystemEvent, at: DateTime<Utc>, in_window: bool) {
    match event {
        SystemEvent::AlertIntended(intent) if in_window => {
            alerts.insert(
                intent.alert_id,
                AlertRow { at, kind: intent.kind, subject: intent.subject, sent_at: None, failed: None },
            );
        }
        SystemEvent::AlertSent(outcome) => {
            if let Some(alert) = alerts.get_mut(&outcome.alert_id) {
                alert.sent_at = Some(at);
                alert.failed = None;
            }
        }
        SystemEvent::AlertFailed(outcome) => {
            if let Some(alert) = alerts.get_mut(&outcome.alert_id) {
                alert.failed = outcome.error;
            }
        }
        _ => {}
    }
}

#[allow(clippy::too_many_arguments)]
fn follow_order(
    trace: &mut OrderTrace,
    event: &OrderEvent,
    version: i64,
    at: DateTime<Utc>,
    actor: &str,
    in_window: bool,
    report: &mut IncidentReport,
    key: &OrderKey,
) {
    let before = trace.state.status;
    trace.state.apply_recorded(event, version, at);
    if trace.state.status != before {
        if let Some(status) = trace.state.status {
            trace.statuses.push((at, status));
        }
    }
    match event {
        OrderEvent::OrderDetected(detected) => match detected.via {
            DetectionSource::Mail => {
                trace.mail_at.get_or_insert(at);
            }
            DetectionSource::Api => {
                trace.api_at.get_or_insert(at);
            }
        },
        OrderEvent::McfCreateIntended(_) => trace.create_pending = Some(at),
        OrderEvent::McfOrderCreated(created) => {
            if let (Some(since), true) = (trace.create_pending.take(), in_window) {
                if created.adopted {
                    report.side_effects.push(SideEffect {
                        order: key.to_string(),
                        at: since,
                        what: format!(
                            "MCF出荷依頼の結果が不明だったため、Amazonで確認して既存の注文 {} を採用しました (二重出荷なし)",
                            created.fulfillment_order_id
                        ),
                        for_operator: false,
                    });
                }
            }
        }
        OrderEvent::OrderFailed(_) | OrderEvent::McfCancelRefused(_) | OrderEvent::McfCreateRejected(_) => {
            if matches!(event, OrderEvent::McfCreateRejected(_)) {
                trace.create_pending = None;
            }
            if !in_window || actor.starts_with("operator:") {
                return record_operator(report, in_window, actor, key, at, event);
            }
            report.side_effects.push(SideEffect {
                order: key.to_string(),
                at,
                what: event.describe(),
                for_operator: true,
            });
        }
        _ => {}
    }
    record_operator(report, in_window, actor, key, at, event);
}

fn record_operator(
    report: &mut IncidentReport,
    in_window: bool,
    actor: &str,
    key: &OrderKey,
    at: DateTime<Utc>,
    event: &OrderEvent,
) {
    if in_window && actor.starts_with("operator:") {
        report.operator_actions.push(OperatorAction {
            at,
            actor: actor.to_owned(),
            order: key.to_string(),
            what: event.describe(),
        });
    }
}

/// The order arrived in the window: ordered (or first seen) in it.
fn arrived(report: &mut IncidentReport, order: &str, trace: &OrderTrace) {
    let ordered_at = trace.state.details.as_ref().map(|d| d.ordered_at.with_timezone(&Utc));
    let arrival = ordered_at.unwrap_or(trace.first_seen_at);
    if arrival < report.from || arrival > report.to {
        return;
    }
    let marketplace = order.split('-').next().unwrap_or_default();
    let backfilled = trace.api_at.is_some_and(|api_at| {
        report.failing.iter().any(|p| {
            p.source == format!("poll-{marketplace}")
                && p.first_failure <= api_at
                && p.recovered_at.is_some_and(|recovered| recovered <= api_at + Duration::minutes(1))
                && arrival <= p.recovered_at.unwrap_or(api_at)
                && arrival >= p.first_failure - Duration::minutes(30)
        })
    });
    report.arrived.push(ArrivedOrder {
        order: order.to_owned(),
        ordered_at,
        first_seen_at: trace.first_seen_at,
        mail_detected_at: trace.mail_at,
        api_detected_at: trace.api_at,
        backfilled,
        status_now: trace.state.status,
    });
}

/// Statuses the system moves on by itself, cycle after cycle.
const SYSTEM_MOVES: [Status; 3] = [Status::Received, Status::Verified, Status::ShippingRequested];

fn stuck(report: &mut IncidentReport, order: &str, trace: &OrderTrace, threshold: Duration) {
    for (index, (since, status)) in trace.statuses.iter().enumerate() {
        if !SYSTEM_MOVES.contains(status) {
            continue;
        }
        let until = trace.statuses.get(index + 1).map(|(at, _)| *at);
        let from = (*since).max(report.from);
        let end = until.unwrap_or(report.to).min(report.to);
        if end - from <= threshold {
            continue;
        }
        let while_failing = report
            .failing
            .iter()
            .filter(|p| p.first_failure <= end && p.recovered_at.unwrap_or(report.to) >= from)
            .map(|p| p.source.clone())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        report.stuck.push(StuckOrder {
            order: order.to_owned(),
            status: *status,
            from: *since,
            until: until.filter(|u| *u <= report.to),
            minutes: (end - from).num_minutes(),
            while_failing,
        });
    }
}

/// `2020-02-10 15:45 JST`.
pub fn jst(at: DateTime<Utc>) -> String {
    at.with_timezone(&events::clock::jst()).format("%Y-%m-%d %H:%M JST").to_string()
}

fn duration_text(minutes: i64) -> String {
    match (minutes / 60, minutes % 60) {
        (0, m) => format!("{m}分"),
        (h, 0) => format!("{h}時間"),
        (h, m) => format!("{h}時間{m}分"),
    }
}

fn kinds_text(kinds: &BTreeSet<FailureKind>) -> &'static str {
    match (kinds.contains(&FailureKind::Outage), kinds.contains(&FailureKind::Credentials)) {
        (_, true) => "認証エラー (キー・トークンの更新が必要)",
        _ => "障害 (自動で再試行)",
    }
}

impl IncidentReport {
    /// The story in words, for an admin's terminal (and mail).
    pub fn text(&self) -> String {
        let mut out =
            format!("インシデント報告: {} 〜 {} ({} 件のイベント)\n", jst(self.from), jst(self.to), self.events);
        self.push_failing(&mut out);
        self.push_alerts(&mut out);
        self.push_arrived(&mut out);
        self.push_stuck(&mut out);
        self.push_side_effects(&mut out);
        self.push_operator_actions(&mut out);
        out
    }

    /// Each source's failing periods, its outage alert and its recovery.
    fn push_failing(&self, out: &mut String) {
        out.push_str("\n■ 取得元の失敗\n");
        if self.failing.is_empty() {
            out.push_str("  なし: どの取得元も読めていました\n");
        }
        for period in &self.failing {
            out.push_str(&format!(
                "  {}: {} 〜 {} に {} 回失敗 [{}]\n    エラー: {}\n",
                period.source,
                jst(period.first_failure),
                jst(period.last_failure),
                period.failures,
                kinds_text(&period.kinds),
                period.errors.join(" / ")
            ));
            if let Some(at) = period.outage_declared_at {
                out.push_str(&format!("    障害として通知: {}\n", jst(at)));
            }
            match (period.recovered_at, period.backfilled) {
                (Some(at), Some(n)) => {
                    out.push_str(&format!("    復旧: {} (この時の取得で新しい注文 {n} 件を取り込み)\n", jst(at)))
                }
                (Some(at), None) => out.push_str(&format!("    復旧: {}\n", jst(at))),
                (None, _) => out.push_str("    まだ復旧していません\n"),
            }
        }
    }

    /// The alerts the admin was sent (or not).
    fn push_alerts(&self, out: &mut String) {
        out.push_str("\n■ 管理者への通知\n");
        if self.alerts.is_empty() {
            out.push_str("  なし\n");
        }
        for alert in &self.alerts {
            let outcome = match (&alert.sent_at, &alert.failed) {
                (Some(at), _) => format!("送信済み {}", jst(*at)),
                (None, Some(error)) => format!("送信失敗: {error}"),
                (None, None) => "未送信 (SMTP未設定、または送信待ち)".into(),
            };
            out.push_str(&format!("  {} {} — {outcome}\n", jst(alert.at), alert.subject));
        }
    }

    /// Orders that arrived in the window, and how each was seen.
    fn push_arrived(&self, out: &mut String) {
        out.push_str(&format!(
            "\n■ この間に入った注文: {} 件 (うちバックフィル {} 件)\n",
            self.arrived.len(),
            self.backfilled()
        ));
        for order in &self.arrived {
            let seen = |at: Option<DateTime<Utc>>| at.map_or_else(|| "—".to_owned(), jst);
            out.push_str(&format!(
                "  {}  注文 {}  メール検知 {}  API検知 {}{}  現在 {}\n",
                order.order,
                seen(order.ordered_at),
                seen(order.mail_detected_at),
                seen(order.api_detected_at),
                if order.backfilled { " (復旧時にバックフィル)" } else { "" },
                order.status_now.map_or("—", |s| s.as_str())
            ));
        }
    }

    /// Orders that did not move for longer than the cycle allows.
    fn push_stuck(&self, out: &mut String) {
        out.push_str("\n■ サイクルの間隔を超えて動かなかった注文\n");
        if self.stuck.is_empty() {
            out.push_str("  なし\n");
        }
        for stuck in &self.stuck {
            let until = stuck.until.map_or_else(|| "期間の終わりまで".to_owned(), jst);
            let why = if stuck.while_failing.is_empty() {
                String::new()
            } else {
                format!(" — この間 {} が失敗していました", stuck.while_failing.join(", "))
            };
            out.push_str(&format!(
                "  {}  {} のまま {} ({} 〜 {}){why}\n",
                stuck.order,
                stuck.status,
                duration_text(stuck.minutes),
                jst(stuck.from),
                until
            ));
        }
    }

    /// Outside writes retried, or waiting for an operator.
    fn push_side_effects(&self, out: &mut String) {
        out.push_str("\n■ 再試行された・運用者を待つ外部への書き込み\n");
        if self.side_effects.is_empty() {
            out.push_str("  なし\n");
        }
        for effect in &self.side_effects {
            out.push_str(&format!(
                "  {} {} {}{}\n",
                jst(effect.at),
                effect.order,
                effect.what,
                if effect.for_operator { " [要対応]" } else { "" }
            ));
        }
    }

    /// What operators did.
    fn push_operator_actions(&self, out: &mut String) {
        out.push_str("\n■ 運用者の操作\n");
        if self.operator_actions.is_empty() {
            out.push_str("  なし\n");
        }
        for action in &self.operator_actions {
            out.push_str(&format!("  {} {} {} {}\n", jst(action.at), action.actor, action.order, action.what));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_cycles_and_a_margin_is_long_for_a_status_the_system_moves() {
        assert_eq!(stuck_threshold(Duration::minutes(10)), Duration::minutes(25));
    }
}
