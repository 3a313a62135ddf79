//! Choosing the MCF shipping speed from Amazon's previews and the marketplace's promise:
//! - a requested delivery slot ships ScheduledDelivery with a window copied from the preview, or
//!   stops as DATE_UNAVAILABLE when no window matches;
//! - Yahoo premium delivery (優良配送) upgrades Standard to Expedited when Standard's latest
//!   arrival (JST) is after the promised date, and records both estimates;
//! - otherwise Standard.

use chrono::{DateTime, NaiveDate, Timelike, Utc};
use events::clock::jst;
use events::order::{DeliveryRequest, DeliveryWindow, ShippingSpeed};

/// One speed's answer from getFulfillmentPreview.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreviewOption {
    pub speed: ShippingSpeed,
    pub fulfillable: bool,
    pub latest_arrival: Option<DateTime<Utc>>,
    pub windows: Vec<DeliveryWindow>,
    /// Amazon's reasons when not fulfillable.
    pub reasons: Vec<String>,
}

/// What the marketplace promised the buyer.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Promise {
    pub premium_deadline: Option<NaiveDate>,
    /// None when there is no request, or the operator dropped it.
    pub delivery_request: Option<DeliveryRequest>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SpeedDecision {
    Ship { speed: ShippingSpeed, window: Option<DeliveryWindow>, reason: String },
    SlotUnavailable { requested: String, offered: Vec<String> },
    Unfulfillable { reason: String },
}

fn jst_date(time: DateTime<Utc>) -> NaiveDate {
    time.with_timezone(&jst()).date_naive()
}

fn show(time: Option<DateTime<Utc>>) -> String {
    time.map_or_else(|| "unknown".to_owned(), |t| t.with_timezone(&jst()).format("%Y-%m-%d %H:%M JST").to_string())
}

/// "14-16" (also "14:00-16:00", "1416") -> (14, 16).
pub fn parse_slot(slot: &str) -> Option<(u32, u32)> {
    let digits: Vec<u32> =
        slot.split(|c: char| !c.is_ascii_digit()).filter(|s| !s.is_empty()).filter_map(|s| s.parse().ok()).collect();
    match digits.as_slice() {
        [from, to] if from < to && *to <= 24 => Some((*from, *to)),
        [from, 0, to, 0] if from < to && *to <= 24 => Some((*from, *to)),
        [both] if *both >= 100 => Some((both / 100, both % 100)).filter(|(a, b)| a < b && *b <= 24),
        _ => None,
    }
}

fn window_label(window: &DeliveryWindow) -> String {
    let start = window.start.with_timezone(&jst());
    let end = window.end.with_timezone(&jst());
    format!("{} {:02}-{:02}", start.format("%Y-%m-%d"), start.hour(), end.hour())
}

pub fn choose_speed(promise: &Promise, options: &[PreviewOption]) -> SpeedDecision {
    let option = |speed: ShippingSpeed| options.iter().find(|o| o.speed == speed && o.fulfillable);
    if let Some(request) = &promise.delivery_request {
        let requested = match &request.slot {
            Some(slot) => format!("{} {slot}", request.date),
            None => request.date.to_string(),
        };
        let slot = request.slot.as_deref().and_then(parse_slot);
        let windows = option(ShippingSpeed::ScheduledDelivery).map(|o| o.windows.as_slice()).unwrap_or_default();
        let matching = windows.iter().find(|w| {
            let start = w.start.with_timezone(&jst());
            let end = w.end.with_timezone(&jst());
            start.date_naive() == request.date && slot.is_none_or(|(from, to)| start.hour() == from && end.hour() == to)
        });
        return match matching {
            Some(window) => SpeedDecision::Ship {
                speed: ShippingSpeed::ScheduledDelivery,
                window: Some(window.clone()),
                reason: format!(
                    "delivery slot {requested} requested: ScheduledDelivery window {}",
                    window_label(window)
                ),
            },
            None => {
                let same_day: Vec<String> =
                    windows.iter().filter(|w| jst_date(w.start) == request.date).map(window_label).collect();
                let offered =
                    if same_day.is_empty() { windows.iter().take(10).map(window_label).collect() } else { same_day };
                SpeedDecision::SlotUnavailable { requested, offered }
            }
        };
    }
    let standard = option(ShippingSpeed::Standard);
    let expedited = option(ShippingSpeed::Expedited);
    if let Some(deadline) = promise.premium_deadline {
        let standard_arrival = standard.and_then(|o| o.latest_arrival);
        let expedited_arrival = expedited.and_then(|o| o.latest_arrival);
        let in_time = |arrival: Option<DateTime<Utc>>| arrival.is_some_and(|a| jst_date(a) <= deadline);
        if standard.is_some() && in_time(standard_arrival) {
            return SpeedDecision::Ship {
                speed: ShippingSpeed::Standard,
                window: None,
                reason: format!(
                    "premium delivery by {deadline}: Standard arrives by {}, in time",
                    show(standard_arrival)
                ),
            };
        }
        if expedited.is_some() {
            let verdict = if in_time(expedited_arrival) { "in time" } else { "still late, the fastest offered" };
            return SpeedDecision::Ship {
                speed: ShippingSpeed::Expedited,
                window: None,
                reason: format!(
                    "premium delivery by {deadline}: Standard arrives by {}, too late; upgraded to Expedited, arriving by {} ({verdict})",
                    show(standard_arrival),
                    show(expedited_arrival)
                ),
            };
        }
    }
    match (standard, expedited) {
        (Some(o), _) => SpeedDecision::Ship {
            speed: ShippingSpeed::Standard,
            window: None,
            reason: match promise.premium_deadline {
                Some(deadline) => format!(
                    "premium delivery by {deadline}: no Expedited offered; Standard arrives by {}",
                    show(o.latest_arrival)
                ),
                None => format!("no delivery promise: Standard, arriving by {}", show(o.latest_arrival)),
            },
        },
        (None, Some(o)) => SpeedDecision::Ship {
            speed: ShippingSpeed::Expedited,
            window: None,
            reason: format!("Standard not offered; Expedited, arriving by {}", show(o.latest_arrival)),
        },
        (None, None) => {
            let reasons: Vec<String> = options.iter().flat_map(|o| o.reasons.iter().cloned()).collect();
            SpeedDecision::Unfulfillable {
                reason: if reasons.is_empty() {
                    "Amazon offers no speed for this order".to_owned()
                } else {
                    reasons.join(", ")
                },
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(day: u32, hour: u32) -> DateTime<Utc> {
        jst().with_ymd_and_hms(2026, 11, day, hour, 0, 0).unwrap().with_timezone(&Utc)
    }

    fn date(day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, day).unwrap()
    }

    fn option(speed: ShippingSpeed, arrival_day: u32) -> PreviewOption {
        PreviewOption {
            speed,
            fulfillable: true,
            latest_arrival: Some(at(arrival_day, 21)),
            windows: vec![],
            reasons: vec![],
        }
    }

    fn scheduled(windows: &[(u32, u32, u32)]) -> PreviewOption {
        PreviewOption {
            speed: ShippingSpeed::ScheduledDelivery,
            fulfillable: true,
            latest_arrival: None,
            windows: windows
                .iter()
                .map(|(d, from, to)| DeliveryWindow { start: at(*d, *from), end: at(*d, *to) })
                .collect(),
            reasons: vec![],
        }
    }

    #[test]
    fn given_no_promise_then_standard() {
        let decision = choose_speed(
            &Promise::default(),
            &[option(ShippingSpeed::Standard, 25), option(ShippingSpeed::Expedited, 23)],
        );
        assert!(
            matches!(decision, SpeedDecision::Ship { speed: ShippingSpeed::Standard, window: None, .. }),
            "{decision:?}"
        );
    }

    #[test]
    fn given_premium_delivery_when_standard_is_too_late_then_expedited_with_both_estimates_recorded() {
        let promise = Promise { premium_deadline: Some(date(24)), delivery_request: None };
        let decision =
            choose_speed(&promise, &[option(ShippingSpeed::Standard, 25), option(ShippingSpeed::Expedited, 23)]);
        let SpeedDecision::Ship { speed, reason, .. } = decision else { panic!("{decision:?}") };
        assert_eq!(speed, ShippingSpeed::Expedited);
        assert_eq!(
            reason,
            "premium delivery by 2026-11-24: Standard arrives by 2026-11-25 21:00 JST, too late; upgraded to Expedited, arriving by 2026-11-23 21:00 JST (in time)"
        );
    }

    #[test]
    fn given_premium_delivery_when_standard_is_in_time_then_standard() {
        let promise = Promise { premium_deadline: Some(date(24)), delivery_request: None };
        let decision =
            choose_speed(&promise, &[option(ShippingSpeed::Standard, 24), option(ShippingSpeed::Expedited, 23)]);
        assert!(matches!(decision, SpeedDecision::Ship { speed: ShippingSpeed::Standard, .. }), "{decision:?}");
    }

    #[test]
    fn given_a_slot_when_the_preview_offers_it_then_scheduled_delivery_with_that_exact_window() {
        let promise = Promise {
            premium_deadline: None,
            delivery_request: Some(DeliveryRequest { date: date(25), slot: Some("14-16".into()) }),
        };
        let decision =
            choose_speed(&promise, &[option(ShippingSpeed::Standard, 25), scheduled(&[(25, 8, 12), (25, 14, 16)])]);
        let SpeedDecision::Ship { speed, window, .. } = decision else { panic!("{decision:?}") };
        assert_eq!(speed, ShippingSpeed::ScheduledDelivery);
        assert_eq!(window, Some(DeliveryWindow { start: at(25, 14), end: at(25, 16) }));
    }

    #[test]
    fn given_a_slot_when_no_window_matches_then_date_unavailable_listing_what_is_offered() {
        let promise = Promise {
            premium_deadline: None,
            delivery_request: Some(DeliveryRequest { date: date(25), slot: Some("12-14".into()) }),
        };
        let decision = choose_speed(
            &promise,
            &[option(ShippingSpeed::Standard, 25), scheduled(&[(25, 8, 12), (25, 14, 16), (26, 8, 12)])],
        );
        assert_eq!(
            decision,
            SpeedDecision::SlotUnavailable {
                requested: "2026-11-25 12-14".into(),
                offered: vec!["2026-11-25 08-12".into(), "2026-11-25 14-16".into()]
            }
        );
    }

    #[test]
    fn given_a_dropped_slot_then_standard() {
        let promise = Promise { premium_deadline: None, delivery_request: None };
        let decision = choose_speed(&promise, &[option(ShippingSpeed::Standard, 25), scheduled(&[(25, 14, 16)])]);
        assert!(matches!(decision, SpeedDecision::Ship { speed: ShippingSpeed::Standard, .. }));
    }

    #[test]
    fn given_nothing_fulfillable_then_amazons_reasons() {
        let mut standard = option(ShippingSpeed::Standard, 25);
        standard.fulfillable = false;
        standard.reasons = vec!["InventoryUnavailable".into()];
        assert_eq!(
            choose_speed(&Promise::default(), &[standard]),
            SpeedDecision::Unfulfillable { reason: "InventoryUnavailable".into() }
        );
    }

    #[test]
    fn slots_parse_in_the_forms_marketplaces_write_them() {
        assert_eq!(parse_slot("14-16"), Some((14, 16)));
        assert_eq!(parse_slot("14:00-16:00"), Some((14, 16)));
        assert_eq!(parse_slot("1416"), Some((14, 16)));
        assert_eq!(parse_slot("午前中"), None);
        assert_eq!(parse_slot("16-14"), None);
    }
}
