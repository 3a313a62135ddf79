//! The operator's actions on orders: a status change, a cancellation (confirmed first when Amazon
//! has the order), an address correction, the return of a parcel Amazon shipped although it was
//! cancelled, another delivery slot, a memo, and the list's bulk changes. Each is decided by
//! `events::order::operator` on the order as the operator saw it.

use super::parse_version;
use crate::web::security::Operator;
use crate::web::{field, parse_order_key, AppState, FormPairs, WebError, WebResult};
use askama::Template;
use axum::extract::{Path, State};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::{Extension, Form};
use events::envelope::Meta;
use events::order::{operator, Address, OrderEvent, OrderState, Status};
use events::OrderKey;
use std::sync::Arc;

/// Which version of the order an action is decided on.
#[derive(Clone, Copy)]
enum At {
    /// The one the operator saw (the form's `version`): a change meanwhile refuses the action.
    Seen,
    /// Whatever it is now: for what changes no status (a memo).
    Latest,
}

/// One operator action on one order from its page: the form's CSRF token is checked, `decide`
/// runs on the order at the version `at` says, and the operator returns to the order with
/// `done` saying what happened.
async fn act_on_order(
    state: Arc<AppState>,
    operator: Operator,
    order: String,
    form: FormPairs,
    (done, at): (&'static str, At),
    decide: impl FnOnce(&OrderState, &FormPairs) -> Result<OrderEvent, operator::Refusal> + Send + 'static,
) -> WebResult<Response> {
    state.check_csrf(&operator, &form)?;
    let key = parse_order_key(&order)?;
    let version = match at {
        At::Seen => Some(parse_version(field(&form, "version"))?),
        At::Latest => None,
    };
    let target = key.clone();
    let meta: Meta = operator.meta();
    state
        .db
        .write(move |ledger| {
            ledger.operator_act(&target, version, meta, |current| decide(current, &form))?;
            Ok(())
        })
        .await?;
    tracing::info!(order = %key, operator = operator.0, action = done, "operator action recorded");
    Ok(Redirect::to(&format!("/orders/{key}?done={done}")).into_response())
}

pub async fn change_status(
    State(state): State<Arc<AppState>>,
    Extension(operator): Extension<Operator>,
    Path(order): Path<String>,
    Form(form): Form<FormPairs>,
) -> WebResult<Response> {
    let to = parse_status(field(&form, "to"))?;
    if to == Status::Cancelled {
        return Err(WebError::BadRequest("キャンセルは「キャンセル」ボタンから行ってください".into()));
    }
    act_on_order(state, operator, order, form, ("status", At::Seen), move |current, form| {
        operator::decide_status_change(current, to, field(form, "reason"))
    })
    .await
}

/// The parcel Amazon shipped although the order was cancelled has been dealt with.
pub async fn return_handled(
    State(state): State<Arc<AppState>>,
    Extension(operator): Extension<Operator>,
    Path(order): Path<String>,
    Form(form): Form<FormPairs>,
) -> WebResult<Response> {
    act_on_order(state, operator, order, form, ("return", At::Seen), |current, form| {
        operator::decide_return_handled(current, field(form, "note"))
    })
    .await
}

/// A DATE_UNAVAILABLE order ships in a slot Amazon offered, agreed with the customer.
pub async fn choose_slot(
    State(state): State<Arc<AppState>>,
    Extension(operator): Extension<Operator>,
    Path(order): Path<String>,
    Form(form): Form<FormPairs>,
) -> WebResult<Response> {
    act_on_order(state, operator, order, form, ("slot", At::Seen), |current, form| {
        operator::decide_slot_choice(current, field(form, "slot"), field(form, "reason"))
    })
    .await
}

pub async fn memo(
    State(state): State<Arc<AppState>>,
    Extension(operator): Extension<Operator>,
    Path(order): Path<String>,
    Form(form): Form<FormPairs>,
) -> WebResult<Response> {
    // A memo changes no status: it is kept whatever happened to the order meanwhile.
    act_on_order(state, operator, order, form, ("memo", At::Latest), |current, form| {
        operator::decide_memo(current, field(form, "memo"))
    })
    .await
}

pub async fn correct_address(
    State(state): State<Arc<AppState>>,
    Extension(operator): Extension<Operator>,
    Path(order): Path<String>,
    Form(form): Form<FormPairs>,
) -> WebResult<Response> {
    let optional = |name: &str| Some(field(&form, name).trim().to_owned()).filter(|v| !v.is_empty());
    let address = Address {
        name: field(&form, "name").trim().to_owned(),
        postal_code: field(&form, "postal_code").trim().to_owned(),
        prefecture: field(&form, "prefecture").trim().to_owned(),
        city: field(&form, "city").trim().to_owned(),
        line1: field(&form, "line1").trim().to_owned(),
        line2: optional("line2"),
        phone: optional("phone"),
    };
    if [&address.name, &address.city, &address.line1].iter().any(|v| v.chars().count() > 200) {
        return Err(WebError::BadRequest("住所の項目が200文字を超えています".into()));
    }
    let limits = state.settings.address_limits;
    act_on_order(state, operator, order, form, ("address", At::Seen), move |current, form| {
        operator::decide_address_correction(current, address, field(form, "reason"), limits)
    })
    .await
}

#[derive(Template)]
#[template(path = "web/confirm_cancel.html")]
pub struct ConfirmCancelPage {
    pub csrf: String,
    pub key: String,
    pub version: i64,
    pub reason: String,
    pub mcf_order_id: String,
}

/// The MCF order a cancellation would cancel too, when Amazon may have the order.
fn mcf_order_of(current: &OrderState) -> Option<String> {
    let with_mcf = current.status == Some(Status::Shipping) || current.mcf_intent.is_some();
    with_mcf.then(|| {
        current
            .mcf_order_id
            .as_ref()
            .map(|id| id.as_str().to_owned())
            .or_else(|| current.mcf_intent.as_ref().map(|i| i.fulfillment_order_id.as_str().to_owned()))
            .unwrap_or_default()
    })
}

/// Cancels the order. An order already handed to MCF gets a confirmation page first, saying
/// that the MCF order will be cancelled too.
pub async fn cancel(
    State(state): State<Arc<AppState>>,
    Extension(operator): Extension<Operator>,
    Path(order): Path<String>,
    Form(form): Form<FormPairs>,
) -> WebResult<Response> {
    state.check_csrf(&operator, &form)?;
    let key = parse_order_key(&order)?;
    let version = parse_version(field(&form, "version"))?;
    let reason = field(&form, "reason").trim().to_owned();
    if field(&form, "confirm_mcf") != "yes" {
        let target = key.clone();
        let current = state.db.write(move |ledger| Ok(ledger.order_state(&target)?)).await?;
        if let Some(mcf_order_id) = mcf_order_of(&current) {
            if current.version != version {
                return Err(WebError::from(projections::LedgerError::Stale {
                    order: key.to_string(),
                    seen: version,
                    actual: current.version,
                }));
            }
            operator::decide_status_change(&current, Status::Cancelled, &reason)
                .map_err(|refusal| WebError::BadRequest(refusal.0))?;
            let csrf = state.csrf_token(&operator);
            let page = ConfirmCancelPage { csrf, key: key.to_string(), version, reason, mcf_order_id };
            return Ok(Html(page.render()?).into_response());
        }
    }
    act_on_order(state, operator, order, form, ("cancel", At::Seen), move |current, _| {
        operator::decide_status_change(current, Status::Cancelled, &reason)
    })
    .await
}

fn parse_status(text: &str) -> WebResult<Status> {
    text.parse::<Status>().map_err(|_| {
        WebError::BadRequest(format!("ステータス「{}」はありません", text.chars().take(40).collect::<String>()))
    })
}

pub struct BulkResult {
    pub order: String,
    pub href: String,
    pub applied: bool,
    pub message: String,
}

#[derive(Template)]
#[template(path = "web/bulk_result.html")]
pub struct BulkResultPage {
    pub action: String,
    pub results: Vec<BulkResult>,
    pub applied: usize,
    pub refused: usize,
}

/// The most orders one bulk action changes.
const BULK_LIMIT: usize = 500;

/// Bulk status change or cancel over the checked rows. Each row is decided on its own, with the
/// version shown in the list; refused rows say why, and the others are still applied.
pub async fn bulk(
    State(state): State<Arc<AppState>>,
    Extension(operator): Extension<Operator>,
    Form(form): Form<FormPairs>,
) -> WebResult<Response> {
    state.check_csrf(&operator, &form)?;
    let target = match field(&form, "action") {
        "cancel" => Status::Cancelled,
        "status" => parse_status(field(&form, "to"))?,
        _ => return Err(WebError::BadRequest("一括操作の種類が正しくありません".into())),
    };
    let reason = field(&form, "reason").trim().to_owned();
    if reason.is_empty() {
        return Err(WebError::BadRequest("一括操作には理由が必要です".into()));
    }
    let mcf_confirmed = field(&form, "confirm_mcf") == "yes";
    let selected: Vec<String> = form.iter().filter(|(k, _)| k == "order").map(|(_, v)| v.clone()).collect();
    if selected.is_empty() {
        return Err(WebError::BadRequest("注文が選択されていません".into()));
    }
    if selected.len() > BULK_LIMIT {
        return Err(WebError::BadRequest(format!("一度に変更できるのは {BULK_LIMIT} 件までです")));
    }
    let results = state
        .db
        .write(move |ledger| {
            let results = selected
                .iter()
                .map(|entry| {
                    let (key_text, version_text) = entry.rsplit_once(':').unwrap_or((entry.as_str(), ""));
                    let outcome = (|| -> WebResult<String> {
                        let key: OrderKey = parse_order_key(key_text)?;
                        let version = parse_version(version_text)?;
                        ledger.operator_act(&key, Some(version), operator.meta(), |current| {
                            if target == Status::Cancelled && !mcf_confirmed && mcf_order_of(current).is_some() {
                                return Err(operator::Refusal(
                                    "Amazonに出荷依頼済みの注文です。MCF出荷も取り消すことを確認する欄にチェックしてください"
                                        .into(),
                                ));
                            }
                            operator::decide_status_change(current, target, &reason)
                        })?;
                        Ok(if target == Status::Cancelled {
                            "キャンセルを受け付けました".to_owned()
                        } else {
                            format!("{target} に変更しました")
                        })
                    })();
                    tracing::info!(order = key_text, to = %target, applied = outcome.is_ok(), "bulk action");
                    let href = format!("/orders/{key_text}");
                    match outcome {
                        Ok(message) => BulkResult { href, order: key_text.to_owned(), applied: true, message },
                        Err(error) => {
                            BulkResult { href, order: key_text.to_owned(), applied: false, message: error.message() }
                        }
                    }
                })
                .collect::<Vec<_>>();
            Ok(results)
        })
        .await?;
    let applied = results.iter().filter(|r| r.applied).count();
    let page = BulkResultPage {
        action: if target == Status::Cancelled {
            "キャンセル".into()
        } else {
            format!("ステータス変更 → {target}")
        },
        refused: results.len() - applied,
        applied,
        results,
    };
    Ok(Html(page.render()?).into_response())
}
