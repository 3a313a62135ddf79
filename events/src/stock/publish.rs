//! Publishing a plan: pure decisions over the `stock-*` streams. Which rows to write, whether
//! a write came through (from reading the marketplace back), what each marketplace was last
//! told, and whether the brakes hold the sync.

use super::{plan::PlanRow, StockEvent, StockKey, StockRow, StockRowProblem, StockWriteIntended};
use std::collections::BTreeMap;

/// The rows of one marketplace's plan to write now: each listing with a key whose quantity
/// changed, or every one with a key after an outage (`resync`: what the marketplace shows may
/// be anything by now).
pub fn rows_to_write(rows: &[PlanRow], marketplace: crate::ids::Marketplace, resync: bool) -> Vec<StockRow> {
    rows.iter()
        .filter(|row| row.marketplace == marketplace && (row.changes() || resync))
        .filter_map(|row| {
            Some(StockRow {
                marketplace_sku: row.marketplace_sku.clone(),
                key: row.key.clone()?,
                quantity: row.quantity?,
            })
        })
        .collect()
}

/// One listing's stock as the marketplace shows it when read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeenStock {
    pub key: StockKey,
    /// The marketplace has an item under this key (both accept writes to keys they lack).
    pub found: bool,
    /// None: no stock is kept (the listing never sells out).
    pub quantity: Option<i64>,
    /// Buyers may still order at 0 (RMS's 在庫切れ時の注文受付 or 在庫設定なし, Yahoo's 超過購入可).
    pub orderable_at_zero: bool,
}

/// Which rows the read-back shows as written, and what is wrong with the others, in the
/// operator's words.
pub fn verify(rows: &[StockRow], seen: &[SeenStock]) -> (Vec<String>, Vec<StockRowProblem>) {
    let mut verified = Vec::new();
    let mut problems = Vec::new();
    for row in rows {
        let problem = match seen.iter().find(|s| s.key == row.key) {
            None | Some(SeenStock { found: false, .. }) => {
                Some(("モールにこのキーの商品がありません（キーの誤りか、商品が未登録です）".to_owned(), false))
            }
            Some(s) if s.quantity.is_none() => Some(("モールで在庫数が「設定なし（無制限）」です".to_owned(), false)),
            Some(s) if s.quantity != Some(i64::from(row.quantity)) => Some((
                format!("モールの在庫数は {} です（書いた値は {}）", s.quantity.unwrap_or_default(), row.quantity),
                true,
            )),
            Some(s) if s.orderable_at_zero => {
                Some((
                "在庫0でも注文を受け付ける設定です（楽天: 在庫切れ時の注文受付・在庫設定なし／Yahoo!: 超過購入可）。モールの商品設定を直してください"
                    .to_owned(),
                false,
            ))
            }
            Some(_) => None,
        };
        match problem {
            Some((problem, write_again)) => problems.push(StockRowProblem {
                marketplace_sku: row.marketplace_sku.clone(),
                key: row.key.clone(),
                problem,
                write_again,
            }),
            None => verified.push(row.marketplace_sku.clone()),
        }
    }
    (verified, problems)
}

/// One marketplace's `stock-*` stream folded: what it was last told, per listing, and the
/// write whose outcome is unknown, if any.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Published {
    /// Verified quantities by marketplace SKU.
    pub quantities: BTreeMap<String, u32>,
    /// Listings whose last write did not read back: why, and the quantity written.
    pub problems: BTreeMap<String, (String, u32)>,
    /// The key each of those was written under.
    pub problem_keys: BTreeMap<String, StockKey>,
    /// A write intended with no outcome: read back before anything is written again.
    pub pending: Option<StockWriteIntended>,
    /// The last write was refused or could not be made: write everything again once it can.
    pub resync: bool,
    /// When the last write's outcome was recorded, and what it was (for the stock page).
    pub last_outcome: Option<String>,
}

impl Published {
    /// What the marketplace counts as told, per listing: the verified quantities, and for a
    /// listing set up wrong the quantity last written (so it is not written every run).
    pub fn told(&self) -> BTreeMap<String, u32> {
        self.told_under(|sku| self.problem_keys.get(sku).cloned())
    }

    /// [`told`](Self::told), with each listing's key as the master has it now: a listing set up
    /// wrong counts as told only while its key is the one it was written under, so a key
    /// corrected in the master is written (and read back) at the next run.
    pub fn told_under(&self, current_key: impl Fn(&str) -> Option<StockKey>) -> BTreeMap<String, u32> {
        let mut told = self.quantities.clone();
        for (sku, (_, quantity)) in &self.problems {
            if current_key(sku).as_ref() == self.problem_keys.get(sku) {
                told.insert(sku.clone(), *quantity);
            }
        }
        told
    }

    pub fn fold<'a>(events: impl IntoIterator<Item = (&'a StockEvent, String)>) -> Self {
        let mut published = Self::default();
        let mut intents: BTreeMap<String, StockWriteIntended> = BTreeMap::new();
        let mut written: BTreeMap<(String, String), u32> = BTreeMap::new();
        let intent_quantity = |written: &BTreeMap<(String, String), u32>, id: &str, sku: &str| {
            written.get(&(id.to_owned(), sku.to_owned())).copied()
        };
        for (event, at) in events {
            match event {
                StockEvent::StockWriteIntended(intent) => {
                    for row in &intent.rows {
                        written.insert((intent.write_id.clone(), row.marketplace_sku.clone()), row.quantity);
                    }
                    intents.insert(intent.write_id.clone(), intent.clone());
                    published.pending = Some(intent.clone());
                }
                StockEvent::StockWriteDone(done) => {
                    if let Some(intent) = intents.remove(&done.write_id) {
                        for row in intent.rows.iter().filter(|r| done.verified.contains(&r.marketplace_sku)) {
                            published.quantities.insert(row.marketplace_sku.clone(), row.quantity);
                            published.problems.remove(&row.marketplace_sku);
                        }
                    }
                    for problem in &done.problems {
                        published.quantities.remove(&problem.marketplace_sku);
                        let written = intent_quantity(&written, &done.write_id, &problem.marketplace_sku);
                        match (problem.write_again, written) {
                            (false, Some(quantity)) => {
                                published
                                    .problems
                                    .insert(problem.marketplace_sku.clone(), (problem.problem.clone(), quantity));
                                published.problem_keys.insert(problem.marketplace_sku.clone(), problem.key.clone());
                            }
                            _ => {
                                published.problems.remove(&problem.marketplace_sku);
                            }
                        }
                    }
                    published.pending = None;
                    published.resync = false;
                    published.last_outcome = Some(format!(
                        "{at} 書き込み {} 件、確認済み {} 件、問題 {} 件",
                        done.verified.len() + done.problems.len(),
                        done.verified.len(),
                        done.problems.len()
                    ));
                }
                StockEvent::StockWriteFailed(failed) => {
                    intents.remove(&failed.write_id);
                    published.pending = None;
                    published.resync = true;
                    published.last_outcome = Some(format!("{at} 失敗（モールのメッセージ: {}）", failed.message));
                }
                _ => {}
            }
        }
        published
    }
}

/// The sync's `stock-sync` stream folded: a hold not yet confirmed, or confirmed and not yet
/// used.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncState {
    /// The brakes' reasons of the plan held, until a run publishes.
    pub held: Option<Vec<String>>,
    /// An operator let the held plan go: the next run publishes despite the brakes.
    pub confirmed: bool,
    /// The last run's result, for the health page.
    pub last_finished: Option<super::StockSyncFinished>,
}

impl SyncState {
    pub fn fold<'a>(events: impl IntoIterator<Item = &'a StockEvent>) -> Self {
        let mut state = Self::default();
        for event in events {
            match event {
                StockEvent::StockSyncHeld(held) => {
                    state.held = Some(held.reasons.clone());
                    state.confirmed = false;
                }
                StockEvent::StockSyncConfirmed(_) => state.confirmed = state.held.is_some(),
                StockEvent::StockSyncFinished(finished) => {
                    state.held = None;
                    state.confirmed = false;
                    state.last_finished = Some(finished.clone());
                }
                _ => {}
            }
        }
        state
    }
}

#[cfg(test)]
mod tests {
    use super::super::{StockSyncConfirmed, StockSyncFinished, StockSyncHeld, StockWriteDone, StockWriteFailed};
    use super::*;
    use crate::ids::Marketplace;

    fn key(sku: &str) -> StockKey {
        StockKey::yahoo(sku).unwrap()
    }

    fn row(sku: &str, quantity: u32) -> StockRow {
        StockRow { marketplace_sku: sku.into(), key: key(sku), quantity }
    }

    fn plan_row(sku: &str, key: Option<StockKey>, quantity: Option<u32>, published: Option<u32>) -> PlanRow {
        PlanRow {
            marketplace: Marketplace::Yahoo,
            marketplace_sku: sku.into(),
            key,
            seller_sku: "S".into(),
            units_per_item: 1,
            fba_fulfillable: quantity,
            allotted: 0,
            buffer: 0,
            quantity,
            published,
            components: vec![],
        }
    }

    #[test]
    fn given_a_plan_when_deciding_what_to_write_then_only_changed_rows_with_a_key_unless_resyncing() {
        let rows = vec![
            plan_row("changed", Some(key("changed")), Some(3), Some(5)),
            plan_row("same", Some(key("same")), Some(4), Some(4)),
            plan_row("no-key", None, Some(2), None),
            plan_row("unread", Some(key("unread")), None, None),
        ];
        let written: Vec<String> =
            rows_to_write(&rows, Marketplace::Yahoo, false).into_iter().map(|r| r.marketplace_sku).collect();
        assert_eq!(written, ["changed"]);
        let resync: Vec<String> =
            rows_to_write(&rows, Marketplace::Yahoo, true).into_iter().map(|r| r.marketplace_sku).collect();
        assert_eq!(resync, ["changed", "same"], "after an outage every row with a key and a quantity");
        assert!(rows_to_write(&rows, Marketplace::Rakuten, true).is_empty());
    }

    #[test]
    fn given_a_read_back_then_only_rows_showing_the_quantity_are_verified() {
        let rows = vec![row("ok", 3), row("typo", 2), row("other", 5), row("overdraft", 0), row("unlimited", 1)];
        let seen = vec![
            SeenStock { key: key("ok"), found: true, quantity: Some(3), orderable_at_zero: false },
            SeenStock { key: key("typo"), found: false, quantity: None, orderable_at_zero: false },
            SeenStock { key: key("other"), found: true, quantity: Some(4), orderable_at_zero: false },
            SeenStock { key: key("overdraft"), found: true, quantity: Some(0), orderable_at_zero: true },
            SeenStock { key: key("unlimited"), found: true, quantity: None, orderable_at_zero: false },
        ];
        let (verified, problems) = verify(&rows, &seen);
        assert_eq!(verified, ["ok"]);
        let named: Vec<&str> = problems.iter().map(|p| p.marketplace_sku.as_str()).collect();
        assert_eq!(named, ["typo", "other", "overdraft", "unlimited"]);
        assert!(problems[1].problem.contains("4"), "{}", problems[1].problem);
        let again: Vec<bool> = problems.iter().map(|p| p.write_again).collect();
        assert_eq!(again, [false, true, false, false], "only a quantity that did not take is written again at once");
    }

    #[test]
    fn given_writes_when_folded_then_verified_quantities_are_published_and_a_write_without_outcome_is_pending() {
        let intent = |id: &str, rows: Vec<StockRow>| {
            StockEvent::StockWriteIntended(StockWriteIntended { write_id: id.into(), rows })
        };
        let events = [
            intent("w1", vec![row("a", 3), row("b", 2)]),
            StockEvent::StockWriteDone(StockWriteDone {
                write_id: "w1".into(),
                verified: vec!["a".into()],
                problems: vec![StockRowProblem {
                    marketplace_sku: "b".into(),
                    key: key("b"),
                    problem: "no".into(),
                    write_again: false,
                }],
                note: String::new(),
            }),
            intent("w2", vec![row("a", 0)]),
        ];
        let published = Published::fold(events.iter().map(|e| (e, "t".to_owned())));
        assert_eq!(published.quantities, BTreeMap::from([("a".to_owned(), 3)]));
        assert_eq!(published.problems.get("b"), Some(&("no".to_owned(), 2)));
        assert_eq!(published.told(), BTreeMap::from([("a".to_owned(), 3), ("b".to_owned(), 2)]));
        let corrected = published.told_under(|sku| Some(key(&format!("{sku}-fixed"))));
        assert_eq!(corrected, BTreeMap::from([("a".to_owned(), 3)]), "a corrected key is written again");
        let unchanged = published.told_under(|sku| Some(key(sku)));
        assert_eq!(unchanged.get("b"), Some(&2), "under the same key it is not written every run");
        assert_eq!(published.pending.as_ref().map(|p| p.write_id.as_str()), Some("w2"));

        let failed = StockEvent::StockWriteFailed(StockWriteFailed {
            write_id: "w2".into(),
            code: Some("IE0002".into()),
            message: "bad".into(),
        });
        let after = Published::fold(events.iter().chain([&failed]).map(|e| (e, "t".to_owned())));
        assert!(after.pending.is_none() && after.resync, "a refused write: everything is written again");
        assert_eq!(after.quantities.get("a"), Some(&3), "what was told before still stands");
    }

    #[test]
    fn given_a_hold_then_only_a_confirmation_lets_one_run_publish() {
        let held = StockEvent::StockSyncHeld(StockSyncHeld { reasons: vec!["many to zero".into()] });
        let confirmed = StockEvent::StockSyncConfirmed(StockSyncConfirmed { by: "admin".into() });
        let finished = StockEvent::StockSyncFinished(StockSyncFinished {
            written: 1,
            unchanged: 0,
            problems: 0,
            unavailable: vec![],
        });
        let state = SyncState::fold([&held]);
        assert!(state.held.is_some() && !state.confirmed);
        assert!(SyncState::fold([&held, &confirmed]).confirmed);
        let after = SyncState::fold([&held, &confirmed, &finished]);
        assert!(after.held.is_none() && !after.confirmed && after.last_finished.is_some());
        assert!(!SyncState::fold([&confirmed]).confirmed, "nothing held: nothing to confirm");
    }
}
