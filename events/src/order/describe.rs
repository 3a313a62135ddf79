//! Each event in words an operator understands (the audit trail).

use super::event::*;

impl OrderEvent {
    pub fn describe(&self) -> String {
        use OrderEvent as E;
        match self {
            E::OrderDetected(d) => match d.via {
                DetectionSource::Mail => "注文メールを検知しました".to_owned(),
                DetectionSource::Api => "モールAPIで注文を検知しました".to_owned(),
            },
            E::OrderDetailsRecorded(d) => format!(
                "モールAPIから注文内容を取得しました（{}点、{}円、{}）",
                d.items.iter().map(|i| i.quantity).sum::<u32>(),
                d.total_yen,
                d.settlement.name
            ),
            E::AwaitingConfirmation(r) => format!("確認待ちにしました: {}", r.reason),
            E::MarketplaceConfirmed(_) => "モールで注文を確認しました".to_owned(),
            E::PaymentConfirmed(_) => "入金を確認しました".to_owned(),
            E::OrderHeld(r) => format!("保留: {}", r.reason),
            E::HoldReleased(_) => "保留が解除されました".to_owned(),
            E::OrderVerified(n) => with_note("注文を確定しました (VERIFIED)", &n.note),
            E::StockAllotted(s) => format!(
                "FBA在庫を引当て、出荷依頼にしました: {}",
                s.lines.iter().map(|l| format!("{}×{}", l.seller_sku, l.quantity)).collect::<Vec<_>>().join(", ")
            ),
            E::OutOfStock(o) => format!(
                "在庫不足: {}",
                o.short
                    .iter()
                    .map(|s| format!("{} 必要{} / 在庫{}", s.seller_sku, s.needed, s.available))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            E::OrderFailed(f) => match &f.code {
                Some(code) => format!("エラー（{}）: [{}] {}", f.stage, code, f.message),
                None => format!("エラー（{}）: {}", f.stage, f.message),
            },
            E::McfCreateIntended(i) => {
                format!("MCF出荷依頼を送信します: {}（{}）: {}", i.fulfillment_order_id, i.speed.as_str(), i.reason)
            }
            E::McfOrderCreated(c) if c.adopted => {
                format!("既存のMCF注文 {} を採用しました（{}）", c.fulfillment_order_id, c.speed.as_str())
            }
            E::McfOrderCreated(c) => {
                format!("MCF注文 {} を作成しました（{}）", c.fulfillment_order_id, c.speed.as_str())
            }
            E::McfCreateRejected(r) => format!("Amazonが出荷依頼を受け付けませんでした: [{}] {}", r.code, r.message),
            E::DeliverySlotUnavailable(u) => format!(
                "指定の配送枠 {} は利用できません（提示: {}）",
                u.requested,
                if u.offered.is_empty() { "なし".to_owned() } else { u.offered.join(", ") }
            ),
            E::TrackingRecorded(t) => format!("追跡番号を取得しました: {} {}", t.carrier, t.tracking_number),
            E::ShipmentReported(t) => format!("モールに出荷を登録しました: {} {}", t.carrier, t.tracking_number),
            E::CancellationRequested(c) => match c.source {
                CancelSource::Marketplace => format!("モールでキャンセルされました: {}", c.reason),
                CancelSource::Operator => format!("運用者がキャンセルしました: {}", c.reason),
            },
            E::McfOrderCancelled(c) => {
                format!("MCF注文 {} を取り消しました", c.fulfillment_order_id)
            }
            E::McfCancelRefused(r) => format!("MCF注文を取り消せませんでした（発送済みの可能性）: {}", r.reason),
            E::OperatorStatusChanged(c) => format!("ステータス変更: {} → {}（理由: {}）", c.from, c.to, c.reason),
            E::AddressCorrected(a) => {
                format!("住所を修正しました: {} → {}（理由: {}）", a.old.one_line(), a.new.one_line(), a.reason)
            }
            E::CustomerEmailIntended(e) => format!("顧客メール送信予定: {}", e.kind),
            E::CustomerEmailSending(_) => "顧客メールを送信中".to_owned(),
            E::CustomerEmailSent(_) => "顧客メールを送信しました".to_owned(),
            E::CustomerEmailFailed(e) => format!("顧客メールの送信に失敗しました: {}", e.error),
            E::CustomerEmailWithdrawn(e) => format!("顧客メールを送信しませんでした: {}", e.reason),
            E::ManualTaskDone(t) => with_note(&format!("手動作業を完了: {}", t.task), &t.note),
            E::WriteIntended(w) => format!("{}を送信します", w.write.label()),
            E::WriteSubmitted(w) => {
                format!("{}を受け付けられました。処理結果を確認します（requestId: {}）", w.write.label(), w.request_id)
            }
            E::WriteDone(w) => with_note(&format!("{}が完了しました", w.write.label()), &w.note),
            E::ReturnHandled(n) => with_note("返品対応済み: 注文をキャンセル済みにしました", &n.note),
            E::DeliverySlotChosen(c) => format!("配送枠をお客様と調整しました: {}（理由: {}）", c.slot, c.reason),
            E::MemoAdded(n) => format!("メモ: {}", n.note),
            E::WriteFailed(w) => match &w.code {
                Some(code) => {
                    format!("{}が拒否されました（相手側のメッセージ: [{code}] {}）", w.write.label(), w.message)
                }
                None => format!("{}が拒否されました（相手側のメッセージ: {}）", w.write.label(), w.message),
            },
        }
    }
}

fn with_note(text: &str, note: &str) -> String {
    if note.is_empty() {
        text.to_owned()
    } else {
        format!("{text}（{note}）")
    }
}
