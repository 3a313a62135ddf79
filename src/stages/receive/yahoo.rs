//! Yahoo at receive: poll orderList by publication time (orders appear after the buyer's
//! 10-minute cancel window) over [cursor - overlap, now], read each with orderInfo and record
//! what is new; the cursor advances only after the whole window was recorded. A signature Yahoo
//! did not accept is recorded for an alert.

use crate::stages::intake::record_yahoo_order;
use crate::stages::report::{StageError, StageReport};
use crate::stages::sources::{
    record_poll_outcome, record_source, source_state, PollSettings, Unread, Window, YAHOO_POLL_STREAM,
};
use crate::stages::steps::Steps;
use crate::yahoo::YahooClient;
use events::source::{SignatureRejected, SourceEvent};
use events::Marketplace;
use projections::{Ledger, LedgerError};

pub async fn receive(
    ledger: &mut Ledger,
    client: &YahooClient,
    settings: &PollSettings,
    steps: &mut Steps<'_>,
) -> Result<StageReport, StageError> {
    let mut report = StageReport::new("receive:yahoo");
    let source = source_state(ledger, YAHOO_POLL_STREAM)?;
    let now = ledger.store().now();
    let (start, end) = source.next_window(now, settings.overlap, settings.initial_lookback);
    let outcome = match poll_window(ledger, client, (start, end), steps, &mut report).await? {
        Window::Whole { seen, new } => Ok((seen, new)),
        Window::Failed(unread) => {
            report.source_failed(YAHOO_POLL_STREAM, &unread);
            Err(unread)
        }
        // Stopped between two orders: the window is not whole, so the cursor stays.
        Window::Interrupted => return Ok(report),
    };
    let succeeded = record_poll_outcome(ledger, YAHOO_POLL_STREAM, settings, &source, (start, end), outcome)?;
    check_signature(ledger, client)?;
    if !succeeded {
        report.deferred += 1;
    }
    Ok(report)
}

/// Lists the window and reads each order with orderInfo, recording it before the next.
async fn poll_window(
    ledger: &mut Ledger,
    client: &YahooClient,
    (start, end): (chrono::DateTime<chrono::Utc>, chrono::DateTime<chrono::Utc>),
    steps: &mut Steps<'_>,
    report: &mut StageReport,
) -> Result<Window, StageError> {
    let listed = match client.order_list(start, end).await {
        Ok(listed) => listed,
        Err(error) => return Ok(Window::Failed(Unread::of(&error))),
    };
    let mut new = 0;
    for order in &listed {
        if !steps.proceed(ledger, report)? {
            return Ok(Window::Interrupted);
        }
        report.examined += 1;
        // Known from the API already: the watch re-reads it while it is open. The overlap of
        // windows would otherwise read every recent order again at one call a second.
        if crate::stages::orders::known_to_api(ledger, Marketplace::Yahoo, &order.order_id)? {
            continue;
        }
        let (info, raw) = match client.order_info(&order.order_id).await {
            Ok(read) => read,
            Err(error) => return Ok(Window::Failed(Unread::of(&error))),
        };
        // A ledger failure fails the stage; the cursor stays, the window is read again.
        if record_yahoo_order(ledger, &info, &raw, "receive")?.new {
            new += 1;
            report.advanced += 1;
        }
    }
    Ok(Window::Whole { seen: listed.len() as u32, new })
}

/// Reads one order from Yahoo and records it (mail saw it first). An order Yahoo does not
/// know stays as the mail left it: visible, never verified.
pub async fn fetch_order(ledger: &mut Ledger, client: &YahooClient, order_id: &str) -> Result<bool, StageError> {
    match client.order_info(order_id).await {
        Ok((info, raw)) => Ok(record_yahoo_order(ledger, &info, &raw, "receive")?.appended),
        Err(error) => {
            tracing::warn!(order_id, %error, "cannot read the mail-detected Yahoo order; the poll will find it");
            Ok(false)
        }
    }
}

/// A signature Yahoo did not accept is an alert (once a day per status): the order APIs stop
/// 12 hours after consent without it.
fn check_signature(ledger: &mut Ledger, client: &YahooClient) -> Result<(), LedgerError> {
    let Some(status) = client.authorize_status().filter(|s| s != "authorized") else { return Ok(()) };
    tracing::error!(status, "Yahoo did not accept the public-key signature");
    let today = ledger.store().now().with_timezone(&events::clock::jst()).date_naive();
    let event = SourceEvent::SignatureRejected(SignatureRejected { status: status.clone() });
    record_source(ledger, YAHOO_POLL_STREAM, event, Some(format!("yahoo-signature:{status}:{today}")))
}
