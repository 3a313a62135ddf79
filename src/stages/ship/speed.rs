//! Choosing the MCF shipping speed from Amazon's previews and the marketplace's promise:
//! - a requested delivery slot ships ScheduledDelivery with a window copied from the preview, or
//!   stops as DATE_UNAVAILABLE when no window matches; a date without a slot takes any window
//!   the preview offers on that date, never one it does not;
//! - Yahoo premium delivery (優良配送) takes the cheapest speed whose latest arrival (JST) meets
//!   the promised date, among every speed Amazon offers (Standard, Expedited, Priority); when
//!   none does, the fastest, and the order goes on the to-do list; every estimate is recorded;
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
    /// Amazon's estimated fees in yen, when it gave them.
    pub fee_yen: Option<i64>,
}

/// The speeds a preview asks for, cheapest first when Amazon gives no fees.
pub const PREVIEWED: [ShippingSpeed; 3] = [ShippingSpeed::Standard, ShippingSpeed::Expedited, ShippingSpeed::Priority];

/// What the marketplace promised the buyer.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Promise {
    pub premium_deadline: Option<NaiveDate>,
    /// None when there is no request, or the operator dropped it.
    pub delivery_request: Option<DeliveryRequest>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SpeedDecision {
    Ship {
        speed: ShippingSpeed,
        window: Option<DeliveryWindow>,
        reason: String,
        /// The promise this speed still misses (the operator tells the customer).
        late: Option<String>,
    },
    SlotUnavailable {
        requested: String,
        offered: Vec<String>,
    },
    Unfulfillable {
        reason: String,
    },
}

fn jst_date(time: DateTime<Utc>) -> NaiveDate {
    time.with_timezone(&jst()).date_naive()
}

fn show(time: Option<DateTime<Utc>>) -> String {
    time.map_or_else(|| "不明".to_owned(), |t| t.with_timezone(&jst()).format("%Y-%m-%d %H:%M JST").to_string())
}

pub use events::order::parse_slot;

fn window_label(window: &DeliveryWindow) -> String {
    let start = window.start.with_timezone(&jst());
    let end = window.end.with_timezone(&jst());
    format!("{} {:02}-{:02}", start.format("%Y-%m-%d"), start.hour(), end.hour())
}

/// Yahoo premium delivery: the cheapest fulfillable speed that arrives by `deadline`, else the
/// fastest (late). None when Amazon offers no speed at all.
fn premium(deadline: NaiveDate, options: &[PreviewOption]) -> Option<SpeedDecision> {
    let mut offered: Vec<&PreviewOption> =
        options.iter().filter(|o| o.fulfillable && PREVIEWED.contains(&o.speed)).collect();
    // Cheapest first: Amazon's fee when it gives one for every speed, else the speed's class.
    let rank = |o: &PreviewOption| PREVIEWED.iter().position(|s| *s == o.speed).unwrap_or(PREVIEWED.len());
    if offered.iter().all(|o| o.fee_yen.is_some()) {
        offered.sort_by_key(|o| (o.fee_yen, rank(o)));
    } else {
        offered.sort_by_key(|o| rank(o));
    }
    let estimates = options
        .iter()
        .filter(|o| PREVIEWED.contains(&o.speed))
        .map(|o| match (o.fulfillable, o.fee_yen) {
            (true, Some(fee)) => format!("{} {} 着 ({fee}円)", o.speed.as_str(), show(o.latest_arrival)),
            (true, None) => format!("{} {} 着", o.speed.as_str(), show(o.latest_arrival)),
            (false, _) => format!("{} 提供なし", o.speed.as_str()),
        })
        .collect::<Vec<_>>()
        .join(", ");
    let in_time = |o: &&&PreviewOption| o.latest_arrival.is_some_and(|a| jst_date(a) <= deadline);
    if let Some(chosen) = offered.iter().find(in_time) {
        return Some(SpeedDecision::Ship {
            speed: chosen.speed,
            window: None,
            reason: format!(
                "優良配送 {deadline} まで: 間に合う中で最も安い {} を選択（{estimates}）",
                chosen.speed.as_str()
            ),
            late: None,
        });
    }
    let fastest = offered.iter().min_by_key(|o| (o.latest_arrival.is_none(), o.latest_arrival, rank(o)))?;
    Some(SpeedDecision::Ship {
        speed: fastest.speed,
        window: None,
        reason: format!(
            "優良配送 {deadline} まで: 間に合う配送方法がないため最速の {} を選択（{estimates}）",
            fastest.speed.as_str()
        ),
        late: Some(format!(
            "優良配送のお届け期限 {deadline} に間に合いません（最速の{}で {} 着予定）",
            fastest.speed.as_str(),
            show(fastest.latest_arrival)
        )),
    })
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
                reason: format!("配送枠 {requested} の指定: ScheduledDelivery の枠 {}", window_label(window)),
                late: None,
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
    if let Some(deadline) = promise.premium_deadline {
        if let Some(decision) = premium(deadline, options) {
            return decision;
        }
    }
    let standard = option(ShippingSpeed::Standard);
    let expedited = option(ShippingSpeed::Expedited);
    match (standard, expedited) {
        (Some(o), _) => SpeedDecision::Ship {
            speed: ShippingSpeed::Standard,
            window: None,
            reason: format!("お届け指定なし: Standard（{} 着）", show(o.latest_arrival)),
            late: None,
        },
        (None, Some(o)) => SpeedDecision::Ship {
            speed: ShippingSpeed::Expedited,
            window: None,
            reason: format!("Standard の提供がないため Expedited（{} 着）", show(o.latest_arrival)),
            late: None,
        },
        (None, None) => {
            let reasons: Vec<String> = options.iter().flat_map(|o| o.reasons.iter().cloned()).collect();
            SpeedDecision::Unfulfillable {
                reason: if reasons.is_empty() {
                    "Amazonがこの注文に提供できる配送方法がありません".to_owned()
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
            fee_yen: None,
        }
    }

    fn priced(speed: ShippingSpeed, arrival_day: u32, fee: i64) -> PreviewOption {
        PreviewOption { fee_yen: Some(fee), ..option(speed, arrival_day) }
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
            fee_yen: None,
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
    fn given_premium_delivery_when_standard_is_too_late_then_expedited_with_every_estimate_recorded() {
        let promise = Promise { premium_deadline: Some(date(24)), delivery_request: None };
        let decision = choose_speed(
            &promise,
            &[
                priced(ShippingSpeed::Standard, 25, 450),
                priced(ShippingSpeed::Expedited, 23, 650),
                priced(ShippingSpeed::Priority, 22, 900),
            ],
        );
        let SpeedDecision::Ship { speed, reason, late, .. } = decision else { panic!("{decision:?}") };
        assert_eq!((speed, late), (ShippingSpeed::Expedited, None));
        assert_eq!(
            reason,
            "優良配送 2026-11-24 まで: 間に合う中で最も安い Expedited を選択（Standard 2026-11-25 21:00 JST 着 (450円), Expedited 2026-11-23 21:00 JST 着 (650円), Priority 2026-11-22 21:00 JST 着 (900円)）"
        );
    }

    #[test]
    fn given_next_day_premium_when_only_priority_is_in_time_then_priority() {
        // ExcellentDelivery 2: delivery by the order date + 1.
        let promise = Promise { premium_deadline: Some(date(23)), delivery_request: None };
        let options = [
            priced(ShippingSpeed::Standard, 25, 450),
            priced(ShippingSpeed::Expedited, 24, 650),
            priced(ShippingSpeed::Priority, 23, 900),
        ];
        let decision = choose_speed(&promise, &options);
        assert!(
            matches!(decision, SpeedDecision::Ship { speed: ShippingSpeed::Priority, late: None, .. }),
            "{decision:?}"
        );
    }

    #[test]
    fn given_premium_delivery_when_no_speed_is_in_time_then_the_fastest_and_the_promise_missed_is_named() {
        let promise = Promise { premium_deadline: Some(date(22)), delivery_request: None };
        let mut priority = option(ShippingSpeed::Priority, 22);
        priority.fulfillable = false;
        let decision = choose_speed(
            &promise,
            &[option(ShippingSpeed::Standard, 25), option(ShippingSpeed::Expedited, 23), priority],
        );
        let SpeedDecision::Ship { speed, late, reason, .. } = decision else { panic!("{decision:?}") };
        assert_eq!(speed, ShippingSpeed::Expedited);
        assert_eq!(
            late.as_deref(),
            Some("優良配送のお届け期限 2026-11-22 に間に合いません（最速のExpeditedで 2026-11-23 21:00 JST 着予定）")
        );
        assert!(reason.contains("Priority 提供なし"), "{reason}");
    }

    #[test]
    fn given_a_date_without_a_slot_then_any_window_offered_that_date_and_never_an_invented_one() {
        let promise =
            Promise { premium_deadline: None, delivery_request: Some(DeliveryRequest { date: date(25), slot: None }) };
        let decision =
            choose_speed(&promise, &[option(ShippingSpeed::Standard, 25), scheduled(&[(24, 8, 12), (25, 14, 16)])]);
        let SpeedDecision::Ship { window, .. } = decision else { panic!("{decision:?}") };
        assert_eq!(
            window,
            Some(DeliveryWindow { start: at(25, 14), end: at(25, 16) }),
            "the window Amazon offers that day"
        );
        let none_that_day =
            choose_speed(&promise, &[option(ShippingSpeed::Standard, 25), scheduled(&[(24, 8, 12), (26, 8, 12)])]);
        assert!(matches!(none_that_day, SpeedDecision::SlotUnavailable { .. }), "{none_that_day:?}");
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
