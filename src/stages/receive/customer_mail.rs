//! Customers' emails at receive: the operating guide sends prepaid buyers the payment guidance
//! when their order is first confirmed (楽天 2段階確認). The intake decision intends it; this
//! sends it, from an editable template. Every email is marked sending right before the SMTP
//! call, so none goes out twice; an attempt whose outcome was lost is left for the operator.

use crate::mail::smtp::Mailer;
use crate::stages::orders::record;
use crate::stages::report::{StageError, StageReport};
pub use crate::stages::settings::{CustomerMailSettings, DEFAULT_PAYMENT_GUIDANCE};
use events::order::{
    CustomerEmailFailed, CustomerEmailSending, CustomerEmailSent, CustomerEmailWithdrawn, EmailState, OrderEvent,
    OrderState, Status,
};
use events::OrderKey;
use projections::queries;
use projections::{Ledger, LedgerError};

fn render(template: &str, state: &OrderState) -> (String, String) {
    let details = state.details.as_ref();
    let fill = |text: &str| {
        text.replace("{buyer_name}", details.map_or("", |d| d.buyer.name.as_str()))
            .replace("{order_number}", state.key.as_ref().map_or("", |k| k.order_number.as_str()))
            .replace("{total_yen}", &details.map_or(0, |d| d.total_yen).to_string())
    };
    let (subject, body) = match template.split_once('\n') {
        Some((first, rest)) if first.starts_with("Subject:") => {
            (first.trim_start_matches("Subject:").trim(), rest.trim_start_matches(['\r', '\n']))
        }
        _ => ("ご注文について", template),
    };
    (fill(subject), fill(body))
}

/// Sends every intended customer email, one per order per run.
/// An order that ended (shipped or cancelled) before its emails went out: what they said no
/// longer holds, so they are withdrawn, recorded with the reason, never sent.
fn withdraw_intended(ledger: &mut Ledger, key: &OrderKey, state: &OrderState) -> Result<(), StageError> {
    let status = state.status.map_or("?", Status::as_str);
    let withdrawn: Vec<OrderEvent> = state
        .emails
        .iter()
        .filter(|e| e.state == EmailState::Intended)
        .map(|e| {
            tracing::info!(order = %key, kind = e.kind, status, "customer email withdrawn: the order ended before it went out");
            OrderEvent::CustomerEmailWithdrawn(CustomerEmailWithdrawn {
                email_id: e.email_id.clone(),
                reason: format!("送信前に注文が {status} になりました"),
            })
        })
        .collect();
    if !withdrawn.is_empty() {
        record(ledger, key, state, "receive", withdrawn)?;
    }
    Ok(())
}

pub async fn send(
    ledger: &mut Ledger,
    mailer: Option<&Mailer>,
    settings: &CustomerMailSettings,
) -> Result<StageReport, StageError> {
    let mut report = StageReport::new("receive:customer-mail");
    let Some(mailer) = mailer else {
        if !queries::orders_with_email_intent(ledger.store().connection()).map_err(LedgerError::from)?.is_empty() {
            tracing::info!("SMTP is not configured: customer emails stay recorded, unsent");
        }
        return Ok(report);
    };
    for order in queries::orders_with_email_intent(ledger.store().connection()).map_err(LedgerError::from)? {
        let Ok(key) = order.parse::<OrderKey>() else { continue };
        let state = ledger.order_state(&key)?;
        if state.status.is_some_and(Status::is_final) {
            withdraw_intended(ledger, &key, &state)?;
            continue;
        }
        for email in state.emails.iter().filter(|e| e.state == EmailState::Intended) {
            let to = state.details.as_ref().and_then(|d| d.buyer.email.clone());
            let sending = OrderEvent::CustomerEmailSending(CustomerEmailSending { email_id: email.email_id.clone() });
            if !record(ledger, &key, &state, "receive", vec![sending])? {
                continue;
            }
            let outcome = match to {
                None => Err("the order has no buyer email address".to_owned()),
                Some(to) => {
                    let (subject, body) = render(&settings.payment_guidance_template, &state);
                    mailer.send(&to, &subject, &body).await.map_err(|e| e.to_string())
                }
            };
            let event = match outcome {
                Ok(()) => {
                    tracing::info!(order = %key, kind = email.kind, "customer email sent");
                    report.advanced += 1;
                    OrderEvent::CustomerEmailSent(CustomerEmailSent { email_id: email.email_id.clone() })
                }
                Err(error) => {
                    tracing::warn!(order = %key, kind = email.kind, error, "customer email failed; the operator decides");
                    report.needs_operator += 1;
                    OrderEvent::CustomerEmailFailed(CustomerEmailFailed { email_id: email.email_id.clone(), error })
                }
            };
            crate::stages::orders::record_outcome(ledger, &key, "receive", vec![event])?;
            break; // one email per order per run; the state changed
        }
    }
    Ok(report)
}
