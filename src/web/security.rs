//! Who gets in: Basic auth compared in constant time, IP blocks after repeated failures
//! (recorded in the `security` stream, so a restart does not lift them), CSRF tokens on every
//! form, and the headers that keep personal data out of caches and frames.

use super::{AppState, WebError, WebResult};
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Response};
use base64::Engine;
use chrono::{DateTime, Duration, Utc};
use events::envelope::{Actor, ExpectedVersion, Meta};
use events::security::{IpBlocked, LoginFailed, SecurityEvent};
use projections::{Ledger, LedgerError};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use subtle::ConstantTimeEq;

pub use events::security::SECURITY_STREAM;
pub const FAILURES_BEFORE_BLOCK: usize = 10;
pub const FAILURE_WINDOW_MINUTES: i64 = 5;
pub const BLOCK_MINUTES: i64 = 15;

const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self'; \
     form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// Failed logins and blocks per IP, folded from the `security` stream.
#[derive(Debug, Default)]
pub struct LoginGuard {
    failures: HashMap<IpAddr, Vec<DateTime<Utc>>>,
    blocked_until: HashMap<IpAddr, DateTime<Utc>>,
}

/// What the guard decided about a failed login.
#[derive(Debug, PartialEq, Eq)]
pub enum FailureOutcome {
    Counted(usize),
    Blocked(DateTime<Utc>),
}

impl LoginGuard {
    pub fn load(ledger: &Ledger) -> Result<Self, LedgerError> {
        let mut guard = Self::default();
        let upcasters = events::ledger_event::upcasters();
        for event in ledger.store().read_stream(SECURITY_STREAM)? {
            match SecurityEvent::decode(&event, &upcasters)? {
                SecurityEvent::LoginFailed(failed) => {
                    // An address this build cannot parse was recorded by hand: it blocks nobody.
                    if let Ok(ip) = failed.ip.parse() {
                        guard.failures.entry(ip).or_default().push(event.recorded_at);
                    }
                }
                SecurityEvent::IpBlocked(blocked) => {
                    if let Ok(ip) = blocked.ip.parse() {
                        guard.failures.remove(&ip);
                        guard.blocked_until.insert(ip, blocked.until);
                    }
                }
            }
        }
        Ok(guard)
    }

    pub fn blocked_until(&self, ip: IpAddr, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.blocked_until.get(&ip).copied().filter(|until| *until > now)
    }

    /// Counts a failure; the tenth within the window blocks the IP.
    pub fn record_failure(&mut self, ip: IpAddr, now: DateTime<Utc>) -> FailureOutcome {
        let window_start = now - Duration::minutes(FAILURE_WINDOW_MINUTES);
        let failures = self.failures.entry(ip).or_default();
        failures.retain(|at| *at > window_start);
        failures.push(now);
        if failures.len() >= FAILURES_BEFORE_BLOCK {
            self.failures.remove(&ip);
            let until = now + Duration::minutes(BLOCK_MINUTES);
            self.blocked_until.insert(ip, until);
            FailureOutcome::Blocked(until)
        } else {
            FailureOutcome::Counted(failures.len())
        }
    }
}

/// The logged-in operator, for the actor of the events they cause.
#[derive(Debug, Clone)]
pub struct Operator(pub String);

impl Operator {
    pub fn meta(&self) -> Meta {
        Meta::by(Actor::operator(&self.0))
    }
}

fn client_ip(headers: &HeaderMap, peer: SocketAddr, trust_forwarded_for: bool) -> IpAddr {
    if trust_forwarded_for {
        // The proxy appends the address it saw; anything left of it came from the client.
        let forwarded = headers
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.rsplit(',').next())
            .and_then(|v| v.trim().parse().ok());
        if let Some(ip) = forwarded {
            return ip;
        }
    }
    peer.ip()
}

/// Why a state-changing request comes from another site, if it does. Browsers say where a
/// form was submitted from (`Sec-Fetch-Site`, `Origin`); a page elsewhere that got hold of a
/// token still cannot post with the operator's login. Clients that say nothing (scripts) pass.
fn cross_site(method: &axum::http::Method, headers: &HeaderMap, behind_proxy: bool) -> Option<String> {
    if matches!(*method, axum::http::Method::GET | axum::http::Method::HEAD) {
        return None;
    }
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim);
    // A browser that says where the request comes from is believed first.
    match header("sec-fetch-site") {
        Some("same-origin" | "none") => return None,
        Some(site) => return Some(format!("Sec-Fetch-Site: {site}")),
        None => {}
    }
    let origin = header("origin")?;
    let host = (if behind_proxy { header("x-forwarded-host") } else { None }).or_else(|| header("host"));
    let origin_host = origin.split_once("://").map(|(_, rest)| rest.trim_end_matches('/'));
    match (origin_host, host) {
        (Some(from), Some(host)) if from.eq_ignore_ascii_case(host) => None,
        _ => Some(format!("Origin: {origin}")),
    }
}

/// Compares digests, so neither the content nor the length of the secret leaks through timing.
fn secrets_equal(given: &[u8], expected: &[u8]) -> bool {
    Sha256::digest(given).ct_eq(&Sha256::digest(expected)).into()
}

fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD.decode(encoded.trim()).ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_owned(), password.to_owned()))
}

fn challenge(message: &str) -> Response {
    let mut response = (StatusCode::UNAUTHORIZED, Html(format!("<!doctype html><p>{message}</p>"))).into_response();
    response
        .headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Basic realm=\"mcf-ledger\", charset=\"UTF-8\""));
    response
}

async fn record_security_event(state: &Arc<AppState>, event: SecurityEvent) {
    let event_type = event.event_type();
    let result = state
        .db
        .write(move |ledger| {
            let new = event.to_new_event(Meta::by(Actor::from_stored("web:auth")));
            ledger.append(SECURITY_STREAM, ExpectedVersion::Any, &[new]).map_err(WebError::from)
        })
        .await;
    if let Err(error) = result {
        tracing::error!(?error, event_type, "could not record a security event");
    }
}

impl super::WebSettings {
    /// The single login (compared in constant time; off when it has no password), or a named
    /// operator of the users file.
    pub(crate) fn login_matches(&self, user: &str, password: &str) -> bool {
        let single = !self.password.is_empty()
            && secrets_equal(user.as_bytes(), self.username.as_bytes())
                & secrets_equal(password.as_bytes(), self.password.as_bytes());
        single || self.users.as_ref().is_some_and(|users| users.verify(user, password))
    }
}

/// Authenticates every request but `/healthz`, refuses blocked IPs, and adds the security
/// headers to every answer.
pub async fn guard(
    State(state): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    mut request: Request,
    next: Next,
) -> Response {
    let ip = client_ip(request.headers(), peer, state.settings.trust_forwarded_for);
    let now = state.db.now();
    let blocked = state.guard.lock().ok().and_then(|g| g.blocked_until(ip, now));
    let mut response = if let Some(until) = blocked {
        let minutes = (until - now).num_minutes() + 1;
        let mut response = (
            StatusCode::TOO_MANY_REQUESTS,
            Html(format!(
                "<!doctype html><p>ログイン失敗が多すぎるため、このIPアドレスは一時的にブロックされています。約{minutes}分後に再試行してください。</p>\
                 <p>Too many failed logins from this address; try again in about {minutes} minutes.</p>"
            )),
        )
            .into_response();
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(((until - now).num_seconds().max(1)) as u64));
        response
    } else {
        match basic_credentials(request.headers()) {
            None => challenge("ログインしてください (log in)"),
            Some((user, password)) => {
                if state.settings.login_matches(&user, &password) {
                    match cross_site(request.method(), request.headers(), state.settings.trust_forwarded_for) {
                        Some(why) => {
                            tracing::warn!(%ip, why, "cross-site form submission refused");
                            WebError::Forbidden(format!(
                                "別のサイトから送信されたフォームは受け付けません。管理画面を開き直して操作してください (cross-site request refused: {why})"
                            ))
                            .into_response()
                        }
                        None => {
                            request.extensions_mut().insert(Operator(user));
                            next.run(request).await
                        }
                    }
                } else {
                    let outcome = state.guard.lock().ok().map(|mut g| g.record_failure(ip, now));
                    let failed = SecurityEvent::LoginFailed(LoginFailed { ip: ip.to_string() });
                    record_security_event(&state, failed).await;
                    if let Some(FailureOutcome::Blocked(until)) = outcome {
                        tracing::warn!(%ip, %until, "IP blocked after repeated failed logins");
                        let blocked = IpBlocked { ip: ip.to_string(), until, failures: FAILURES_BEFORE_BLOCK };
                        record_security_event(&state, SecurityEvent::IpBlocked(blocked)).await;
                    } else {
                        tracing::info!(%ip, "failed login");
                    }
                    challenge("ユーザー名またはパスワードが違います (wrong user name or password)")
                }
            }
        }
    };
    add_security_headers(response.headers_mut());
    response
}

pub fn add_security_headers(headers: &mut HeaderMap) {
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CONTENT_SECURITY_POLICY));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    // Same-origin only: URLs (order numbers, searches) never leave for another site, and the
    // admin's own forms still carry their Origin for the cross-site check.
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    // Pages carry buyers' names and addresses: no cache may keep them.
    if !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
}

impl AppState {
    /// The operator's CSRF token: bound to this process's key and the user.
    pub fn csrf_token(&self, operator: &Operator) -> String {
        let mut hasher = Sha256::new();
        hasher.update(self.csrf_key);
        hasher.update(b"csrf\0");
        hasher.update(operator.0.as_bytes());
        hasher.finalize().iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Refuses a form without the operator's token.
    pub fn check_csrf(&self, operator: &Operator, form: &[(String, String)]) -> WebResult<()> {
        let expected = self.csrf_token(operator);
        match form.iter().find(|(k, _)| k == "csrf") {
            Some((_, given)) if secrets_equal(given.as_bytes(), expected.as_bytes()) => Ok(()),
            Some(_) => Err(WebError::Forbidden(
                "the form's security token is not valid (the server may have restarted): reload the page and try again"
                    .into(),
            )),
            None => Err(WebError::Forbidden("the form has no security token (CSRF): reload the page".into())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(minute: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000, 0).unwrap_or_default() + Duration::minutes(minute)
    }

    #[test]
    fn ten_failures_within_five_minutes_block_for_fifteen() {
        let ip: IpAddr = "192.0.2.7".parse().unwrap();
        let mut guard = LoginGuard::default();
        for n in 1..FAILURES_BEFORE_BLOCK {
            assert_eq!(guard.record_failure(ip, at(0)), FailureOutcome::Counted(n));
        }
        assert_eq!(guard.record_failure(ip, at(1)), FailureOutcome::Blocked(at(16)));
        assert_eq!(guard.blocked_until(ip, at(15)), Some(at(16)));
        assert_eq!(guard.blocked_until(ip, at(16)), None);
        let other: IpAddr = "192.0.2.8".parse().unwrap();
        assert_eq!(guard.blocked_until(other, at(2)), None);
    }

    #[test]
    fn failures_older_than_the_window_do_not_count() {
        let ip: IpAddr = "2001:db8::1".parse().unwrap();
        let mut guard = LoginGuard::default();
        for minute in 0..20 {
            // One failure a minute: never ten inside five minutes.
            assert!(matches!(guard.record_failure(ip, at(minute)), FailureOutcome::Counted(n) if n <= 6));
        }
    }

    #[test]
    fn forwarded_for_is_believed_only_when_configured_and_only_its_last_hop() {
        let peer: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        let mut headers = HeaderMap::new();
        headers.insert("x-forwarded-for", HeaderValue::from_static("6.6.6.6, 203.0.113.9"));
        assert_eq!(client_ip(&headers, peer, false), peer.ip());
        assert_eq!(client_ip(&headers, peer, true), "203.0.113.9".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn posts_from_another_site_are_told_apart_from_the_admins_own() {
        use axum::http::Method;
        let headers = |pairs: &[(&'static str, &'static str)]| {
            let mut map = HeaderMap::new();
            for (name, value) in pairs {
                map.insert(*name, HeaderValue::from_static(value));
            }
            map
        };
        let own = headers(&[
            ("host", "127.0.0.1:5003"),
            ("origin", "http://127.0.0.1:5003"),
            ("sec-fetch-site", "same-origin"),
        ]);
        assert_eq!(cross_site(&Method::POST, &own, false), None);
        assert_eq!(cross_site(&Method::POST, &headers(&[("host", "127.0.0.1:5003")]), false), None, "a script");
        let elsewhere = headers(&[("host", "127.0.0.1:5003"), ("origin", "https://evil.example")]);
        assert_eq!(cross_site(&Method::POST, &elsewhere, false).as_deref(), Some("Origin: https://evil.example"));
        assert_eq!(cross_site(&Method::GET, &elsewhere, false), None, "reading is not acting");
        let fetch = headers(&[("host", "127.0.0.1:5003"), ("sec-fetch-site", "cross-site")]);
        assert!(cross_site(&Method::POST, &fetch, false).is_some());
        let null = headers(&[("host", "127.0.0.1:5003"), ("origin", "null")]);
        assert!(cross_site(&Method::POST, &null, false).is_some());
        let proxied = headers(&[
            ("host", "127.0.0.1:5003"),
            ("x-forwarded-host", "admin.shop.example"),
            ("origin", "https://admin.shop.example"),
        ]);
        assert_eq!(cross_site(&Method::POST, &proxied, true), None);
        assert!(cross_site(&Method::POST, &proxied, false).is_some());
    }

    #[test]
    fn credentials_parse_only_from_basic_headers() {
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, HeaderValue::from_static("Basic YWRtaW46cGE6c3M="));
        assert_eq!(basic_credentials(&headers), Some(("admin".into(), "pa:ss".into())));
        headers.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer abc"));
        assert_eq!(basic_credentials(&headers), None);
        headers.insert(header::AUTHORIZATION, HeaderValue::from_static("Basic !!!"));
        assert_eq!(basic_credentials(&headers), None);
        assert!(secrets_equal(b"same", b"same"));
        assert!(!secrets_equal(b"same", b"sam"));
    }
}
