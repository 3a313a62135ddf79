//! receive (mail): new messages from the mailbox, each recorded once in `mailbox-<name>` with
//! its raw bytes; an order number makes the order visible (RECEIVED) and asks the marketplace
//! API for it; a shipment mail records tracking for its MCF order. Mail alone never verifies.

use crate::mail::imap::{fetch_new, ImapConfig, MailboxMark};
use crate::mail::parse::{parse, Classification, ParsedMail};
use crate::rakuten::RakutenClient;
use crate::stages::report::{StageError, StageReport};
use crate::stages::sources::{record_poll_outcome, source_state, PollSettings, Unread};
use crate::stages::steps::Steps;
use crate::yahoo::YahooClient;
use events::envelope::{Actor, ExpectedVersion, Meta};
use events::mailbox::MailboxEvent;
use events::order::{DetectionSource, OrderDetected, OrderEvent, Status, Tracking};
use events::{Marketplace, OrderKey};
use projections::ledger::OrderAppend;
use projections::{Ledger, LedgerError};

pub use events::mailbox::{MailReceived, MailboxCursor};

pub fn mailbox_stream(config: &ImapConfig) -> String {
    format!("mailbox-{}", config.mailbox.to_lowercase().replace(|c: char| !c.is_ascii_alphanumeric(), "_"))
}

fn cursor(ledger: &Ledger, stream: &str) -> Result<Option<MailboxCursor>, LedgerError> {
    let Some(last) = ledger.store().last_of_type(stream, "MailboxCursor")? else { return Ok(None) };
    match MailboxEvent::decode(&last, &events::ledger_event::upcasters())? {
        MailboxEvent::MailboxCursor(cursor) => Ok(Some(cursor)),
        _ => Ok(None),
    }
}

/// Whether the mailbox holds mail the ledger has not read yet: a new UIDVALIDITY (the mailbox
/// was recreated) with anything in it, or a next UID beyond the last one recorded. A server
/// that does not say its next UID tells nothing: the timer's cycle reads the mailbox anyway.
pub fn mail_waiting(cursor: Option<&MailboxCursor>, mark: &MailboxMark) -> bool {
    match cursor {
        Some(cursor) if cursor.uid_validity == mark.uid_validity => {
            mark.uid_next.is_some_and(|next| next > cursor.last_uid.saturating_add(1))
        }
        _ => mark.exists > 0,
    }
}

/// Looks at the mailbox without reading it: where it stands, and whether it holds mail the
/// ledger has not seen.
pub async fn new_mail_waiting(ledger: &mut Ledger, config: &ImapConfig) -> Result<(MailboxMark, bool), MailCheckError> {
    let known = cursor(ledger, &mailbox_stream(config))?;
    let mark = crate::mail::imap::mark(config).await?;
    Ok((mark, mail_waiting(known.as_ref(), &mark)))
}

#[derive(Debug, thiserror::Error)]
pub enum MailCheckError {
    #[error("reading the mailbox cursor: {0}")]
    Ledger(#[from] LedgerError),
    #[error(transparent)]
    Imap(#[from] crate::mail::imap::ImapError),
}

pub struct MailSources<'a> {
    pub rakuten: Option<&'a RakutenClient>,
    pub yahoo: Option<&'a YahooClient>,
}

pub async fn receive(
    ledger: &mut Ledger,
    config: &ImapConfig,
    sources: MailSources<'_>,
    settings: &PollSettings,
    steps: &mut Steps<'_>,
) -> Result<StageReport, StageError> {
    let mut report = StageReport::new("receive:mail");
    let stream = mailbox_stream(config);
    let poll_stream = format!("poll-{stream}");
    let before = source_state(ledger, &poll_stream)?;
    let now = ledger.store().now();
    let known = cursor(ledger, &stream)?;
    let fetched = fetch_new(config, known.map(|c| c.uid_validity), known.map_or(0, |c| c.last_uid)).await;
    let fetched = match fetched {
        Ok(fetched) => fetched,
        Err(error) => {
            let unread = Unread::of(&error);
            report.source_failed(&poll_stream, &unread);
            record_poll_outcome(ledger, &poll_stream, settings, &before, (now, now), Err(unread))?;
            report.deferred += 1;
            return Ok(report);
        }
    };
    let mut rakuten_numbers = Vec::new();
    let mut yahoo_ids = Vec::new();
    let mut new = 0;
    for message in &fetched.messages {
        report.examined += 1;
        let parsed = parse(&message.raw);
        if !record_mail(ledger, &stream, fetched.uid_validity, message.uid, &message.raw, &parsed)? {
            continue; // the same message again (a recreated mailbox): already handled
        }
        match &parsed.classification {
            Classification::RakutenOrder { order_number } => {
                if detect(ledger, Marketplace::Rakuten, order_number, parsed.message_id.as_deref())? {
                    new += 1;
                    report.advanced += 1;
                }
                rakuten_numbers.push(order_number.clone());
            }
            Classification::YahooOrder { order_id } => {
                if detect(ledger, Marketplace::Yahoo, order_id, parsed.message_id.as_deref())? {
                    new += 1;
                    report.advanced += 1;
                }
                yahoo_ids.push(order_id.clone());
            }
            Classification::McfShipment { fulfillment_order_id, tracking_number: Some(number), carrier }
                if record_tracking(ledger, fulfillment_order_id, number, carrier.as_deref().unwrap_or("unknown"))? =>
            {
                report.advanced += 1;
            }
            _ => {}
        }
    }
    if let Some(last) = fetched.messages.last() {
        let cursor = MailboxCursor { uid_validity: fetched.uid_validity, last_uid: last.uid };
        let event = MailboxEvent::MailboxCursor(cursor).to_new_event(Meta::by(Actor::reactor("receive")));
        ledger.append(&stream, ExpectedVersion::Any, &[event])?;
    }
    record_poll_outcome(ledger, &poll_stream, settings, &before, (now, now), Ok((fetched.messages.len() as u32, new)))?;
    // Mail only wakes the marketplace APIs up: they confirm (or not) what the mail claims.
    if let (Some(client), false) = (sources.rakuten, rakuten_numbers.is_empty()) {
        super::rakuten::fetch_orders(ledger, client, &rakuten_numbers).await?;
    }
    if let Some(client) = sources.yahoo {
        for id in &yahoo_ids {
            if !steps.proceed(ledger, &mut report)? {
                break;
            }
            super::yahoo::fetch_order(ledger, client, id).await?;
        }
    }
    Ok(report)
}

/// Records one message; false when it was already recorded (same Message-ID, or same bytes).
fn record_mail(
    ledger: &mut Ledger,
    stream: &str,
    uid_validity: u32,
    uid: u32,
    raw: &[u8],
    parsed: &ParsedMail,
) -> Result<bool, LedgerError> {
    let blob = ledger.store().put_blob(raw, "message/rfc822")?;
    let identity = parsed.message_id.clone().unwrap_or_else(|| blob.sha256.clone());
    let data = MailReceived {
        uid_validity,
        uid,
        message_id: parsed.message_id.clone(),
        date: parsed.date,
        from: parsed.from.clone(),
        subject: parsed.subject.clone(),
        classification: parsed.classification.clone(),
        size: parsed.size,
    };
    let event = MailboxEvent::MailReceived(data)
        .to_new_event(Meta::by(Actor::reactor("receive")))
        .with_blob(&blob.sha256)
        .idempotent(format!("mail:{stream}:{identity}"));
    let outcome = ledger.append(stream, ExpectedVersion::Any, &[event])?;
    tracing::info!(stream, uid, kind = ?parsed.classification, new = !outcome.nothing_new(), "mail recorded");
    Ok(!outcome.nothing_new())
}

/// Makes the order visible from its mail; true when the ledger did not know it.
fn detect(
    ledger: &mut Ledger,
    marketplace: Marketplace,
    number: &str,
    message_id: Option<&str>,
) -> Result<bool, LedgerError> {
    let Ok(key) = OrderKey::new(marketplace, number) else { return Ok(false) };
    let state = ledger.order_state(&key)?;
    if state.detected_via.contains(&DetectionSource::Mail) {
        return Ok(false);
    }
    let event = OrderEvent::OrderDetected(OrderDetected {
        marketplace,
        order_number: number.to_owned(),
        via: DetectionSource::Mail,
        reference: message_id.map(str::to_owned),
    });
    ledger.append_order(
        &key,
        ExpectedVersion::Any,
        vec![OrderAppend::idempotent(event, format!("detect:mail:{key}"))],
        Meta::by(Actor::reactor("receive")),
    )?;
    Ok(state.status.is_none())
}

/// Tracking from Amazon's shipment mail, for a SHIPPING order without it.
fn record_tracking(
    ledger: &mut Ledger,
    fulfillment_order_id: &str,
    number: &str,
    carrier: &str,
) -> Result<bool, LedgerError> {
    let rows = projections::queries::list_orders(
        ledger.store().connection(),
        &projections::OrderFilter { search: Some(fulfillment_order_id.to_owned()), ..Default::default() },
    )?;
    let Some(row) = rows.into_iter().find(|r| r.mcf_order_id.as_deref() == Some(fulfillment_order_id)) else {
        tracing::warn!(fulfillment_order_id, "a shipment mail for an MCF order this ledger does not have");
        return Ok(false);
    };
    let Ok(key) = row.order.parse::<OrderKey>() else { return Ok(false) };
    let state = ledger.order_state(&key)?;
    if state.status != Some(Status::Shipping) || state.tracking.is_some() {
        return Ok(false);
    }
    let tracking = Tracking { carrier: carrier.to_owned(), tracking_number: number.to_owned(), shipped_at: None };
    crate::stages::orders::record(ledger, &key, &state, "receive", vec![OrderEvent::TrackingRecorded(tracking)])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mark(uid_validity: u32, uid_next: Option<u32>, exists: u32) -> MailboxMark {
        MailboxMark { uid_validity, uid_next, exists }
    }

    #[test]
    fn given_the_last_uid_recorded_then_only_a_later_next_uid_is_new_mail() {
        let cursor = MailboxCursor { uid_validity: 7, last_uid: 41 };
        assert!(!mail_waiting(Some(&cursor), &mark(7, Some(42), 41)), "nothing after UID 41");
        assert!(mail_waiting(Some(&cursor), &mark(7, Some(43), 42)), "UID 42 came");
        assert!(!mail_waiting(Some(&cursor), &mark(7, None, 50)), "a server that does not say tells nothing");
    }

    #[test]
    fn given_no_cursor_or_a_recreated_mailbox_then_any_message_is_new_mail() {
        assert!(!mail_waiting(None, &mark(7, Some(1), 0)));
        assert!(mail_waiting(None, &mark(7, Some(2), 1)));
        let cursor = MailboxCursor { uid_validity: 7, last_uid: 41 };
        assert!(mail_waiting(Some(&cursor), &mark(8, Some(2), 1)), "UIDVALIDITY changed");
    }
}
