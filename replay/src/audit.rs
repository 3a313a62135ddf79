//! `mcf-ledger audit`: the promises checked against a ledger (a real shop's, or a test's):
//! an MCF order at most once per order and never shared, no customer email sent twice, no
//! shipment reported twice, a cancelled order has no live MCF order, nothing moved past
//! RECEIVED without the marketplace API, and the projections equal a rebuild.

use crate::ReplayError;
use events::order::{order_upcasters, OrderEvent, OrderState, Status};
use events::{EventStore, OrderKey};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Anomaly {
    pub order: String,
    pub rule: &'static str,
    pub detail: String,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct AuditReport {
    pub orders: usize,
    pub events: usize,
    pub anomalies: Vec<Anomaly>,
}

/// Checks every order stream of the ledger, after checking that every event of the ledger (of
/// any stream) can be folded by this build.
pub fn audit(store: &EventStore) -> Result<AuditReport, ReplayError> {
    crate::check_every_event_folds(store)?;
    let upcasters = order_upcasters();
    let mut report = AuditReport::default();
    let mut mcf_owner: BTreeMap<String, String> = BTreeMap::new();
    for stream in store.streams_in_category("order")? {
        let key = OrderKey::from_stream(&stream).map_err(|e| ReplayError::Invalid(format!("stream {stream}: {e}")))?;
        let order = key.to_string();
        report.orders += 1;
        let mut state = OrderState::new(key.clone());
        let mut created: BTreeSet<String> = BTreeSet::new();
        let mut sent: BTreeMap<String, usize> = BTreeMap::new();
        let mut reports = 0;
        let mut cancelled_at_amazon = false;
        let mut anomaly =
            |rule: &'static str, detail: String| report_anomaly(&mut report.anomalies, &order, rule, detail);
        for recorded in store.read_stream(&stream)? {
            let event = OrderEvent::decode(&recorded, &upcasters)?;
            report.events += 1;
            let before = state.status;
            match &event {
                OrderEvent::McfOrderCreated(c) => {
                    created.insert(c.fulfillment_order_id.to_string());
                    if let Some(other) =
                        mcf_owner.insert(c.fulfillment_order_id.to_string(), order.clone()).filter(|o| *o != order)
                    {
                        anomaly("mcf_shared", format!("MCF order {} also belongs to {other}", c.fulfillment_order_id));
                    }
                }
                // Amazon cancelled it, or it shipped anyway and the operator handled its return.
                OrderEvent::McfOrderCancelled(_) | OrderEvent::ReturnHandled(_) => cancelled_at_amazon = true,
                OrderEvent::CustomerEmailSent(s) => *sent.entry(s.email_id.clone()).or_default() += 1,
                OrderEvent::ShipmentReported(_) => reports += 1,
                _ => {}
            }
            state.apply_recorded(&event, recorded.version, recorded.recorded_at);
            let moved_past_received = matches!(before, None | Some(Status::Received))
                && !matches!(
                    state.status,
                    None | Some(Status::Received) | Some(Status::Cancelled) | Some(Status::Error)
                );
            if moved_past_received && state.details.is_none() {
                anomaly(
                    "unconfirmed_order_moved",
                    format!(
                        "reached {} at position {} without the marketplace API's details",
                        state.status_or_new(),
                        recorded.position
                    ),
                );
            }
        }
        if created.len() > 1 {
            anomaly(
                "mcf_twice",
                format!("{} MCF orders: {}", created.len(), created.iter().cloned().collect::<Vec<_>>().join(", ")),
            );
        }
        for (email, count) in sent.iter().filter(|(_, n)| **n > 1) {
            anomaly("email_twice", format!("customer email {email} sent {count} times"));
        }
        if reports > 1 {
            anomaly("shipment_reported_twice", format!("tracking reported to the marketplace {reports} times"));
        }
        if state.status == Some(Status::Cancelled) && !created.is_empty() && !cancelled_at_amazon {
            anomaly(
                "cancelled_with_live_mcf",
                format!(
                    "CANCELLED but MCF order {} was never cancelled at Amazon (nor its return handled)",
                    created.iter().next().cloned().unwrap_or_default()
                ),
            );
        }
        if state.status == Some(Status::Shipped) && reports == 0 {
            anomaly("shipped_unreported", "SHIPPED without a shipment report".to_owned());
        }
    }
    Ok(report)
}

fn report_anomaly(anomalies: &mut Vec<Anomaly>, order: &str, rule: &'static str, detail: String) {
    anomalies.push(Anomaly { order: order.to_owned(), rule, detail });
}

#[cfg(test)]
mod tests {
    use super::*;
    use events::envelope::{Actor, ExpectedVersion, Meta};
    use events::order::sample::{lifecycle_to, tracking};
    use events::order::{
        CustomerEmailIntended, CustomerEmailSending, CustomerEmailSent, McfOrderCreated, ShippingSpeed,
    };
    use events::store::OpenMode;
    use events::{FulfillmentOrderId, Marketplace};

    fn append(store: &mut EventStore, key: &OrderKey, events: Vec<OrderEvent>) {
        let envelopes: Vec<_> = events.iter().map(|e| e.to_new_event(Meta::by(Actor::system()))).collect();
        store.append(&key.stream(), ExpectedVersion::Any, &envelopes).unwrap();
    }

    #[test]
    fn a_clean_ledger_has_no_anomalies_and_each_broken_promise_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = EventStore::open(&dir.path().join("l.db"), OpenMode::CreateIfMissing).unwrap();
        let clean = OrderKey::new(Marketplace::Rakuten, "1-1").unwrap();
        append(&mut store, &clean, lifecycle_to(&clean, Status::Shipped));
        let report = audit(&store).unwrap();
        assert!(report.anomalies.is_empty(), "{:?}", report.anomalies);
        assert_eq!(report.orders, 1);

        // Raw appends bypass the state machine, as a bug or a hand edit would.
        let twice = OrderKey::new(Marketplace::Yahoo, "s-2").unwrap();
        let mut events = lifecycle_to(&twice, Status::Shipped);
        events.push(OrderEvent::McfOrderCreated(McfOrderCreated {
            fulfillment_order_id: FulfillmentOrderId("YH-s-2-retry".into()),
            speed: ShippingSpeed::Standard,
            adopted: false,
        }));
        events.push(OrderEvent::ShipmentReported(tracking()));
        events
            .push(OrderEvent::CustomerEmailIntended(CustomerEmailIntended { email_id: "e".into(), kind: "k".into() }));
        events.push(OrderEvent::CustomerEmailSending(CustomerEmailSending { email_id: "e".into() }));
        events.push(OrderEvent::CustomerEmailSent(CustomerEmailSent { email_id: "e".into() }));
        events.push(OrderEvent::CustomerEmailSent(CustomerEmailSent { email_id: "e".into() }));
        append(&mut store, &twice, events);
        let forged = OrderKey::new(Marketplace::Rakuten, "9-9").unwrap();
        append(
            &mut store,
            &forged,
            vec![
                events::order::sample::detected(&forged, events::order::DetectionSource::Mail),
                OrderEvent::OrderVerified(events::order::Note::default()),
            ],
        );
        let rules: BTreeSet<&str> = audit(&store).unwrap().anomalies.iter().map(|a| a.rule).collect();
        assert_eq!(
            rules,
            BTreeSet::from(["mcf_twice", "shipment_reported_twice", "email_twice", "unconfirmed_order_moved"])
        );
    }
}
