//! Login with Amazon: exchanges the refresh token for an access token, cached until shortly
//! before it expires and dropped when Amazon says it has expired.

use super::{AmazonError, LwaCredentials};
use crate::transport::{with_retries, Attempt, GaveUp, RetryPolicy};
use serde::Deserialize;
use tokio::sync::Mutex;
use tokio::time::{Duration, Instant};

/// Refresh this long before Amazon's stated expiry.
const EARLY_REFRESH: Duration = Duration::from_secs(60);

#[derive(Debug)]
pub(super) struct TokenCache {
    credentials: LwaCredentials,
    token_url: String,
    cached: Mutex<Option<CachedToken>>,
}

#[derive(Debug, Clone)]
struct CachedToken {
    access_token: String,
    refresh_at: Instant,
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    expires_in: u64,
}

#[derive(Deserialize)]
struct TokenError {
    error: String,
    #[serde(default)]
    error_description: String,
}

impl TokenCache {
    pub(super) fn new(credentials: LwaCredentials, token_url: String) -> Self {
        Self { credentials, token_url, cached: Mutex::new(None) }
    }

    /// A valid access token, refreshing when none is cached or it is about to expire.
    pub(super) async fn access_token(
        &self,
        http: &reqwest::Client,
        retry: &RetryPolicy,
    ) -> Result<String, AmazonError> {
        let mut cached = self.cached.lock().await;
        if let Some(token) = cached.as_ref().filter(|t| Instant::now() < t.refresh_at) {
            return Ok(token.access_token.clone());
        }
        let fresh = self.refresh(http, retry).await?;
        let token = fresh.access_token.clone();
        *cached = Some(fresh);
        Ok(token)
    }

    /// Forgets the cached token (Amazon said it expired).
    pub(super) async fn invalidate(&self) {
        *self.cached.lock().await = None;
    }

    async fn refresh(&self, http: &reqwest::Client, retry: &RetryPolicy) -> Result<CachedToken, AmazonError> {
        let operation = "LWA token";
        with_retries(retry, operation, || self.attempt_refresh(http, retry)).await.map_err(|gave_up| match gave_up {
            GaveUp::Failed(error) => error,
            GaveUp::Unanswered { attempts, last, stopped } => {
                AmazonError::Unavailable { operation, attempts, last, stopped }
            }
        })
    }

    /// One token request: 5xx, 429 and `server_error`/`temporarily_unavailable` are worth
    /// another; any other refusal is a credential problem for a person.
    async fn attempt_refresh(
        &self,
        http: &reqwest::Client,
        retry: &RetryPolicy,
    ) -> Result<CachedToken, Attempt<AmazonError>> {
        let form = [
            ("grant_type", "refresh_token"),
            ("refresh_token", self.credentials.refresh_token.expose()),
            ("client_id", self.credentials.client_id.as_str()),
            ("client_secret", self.credentials.client_secret.expose()),
        ];
        let response = http
            .post(&self.token_url)
            .form(&form)
            .timeout(retry.request_timeout)
            .send()
            .await
            .map_err(|e| Attempt::Retry(e.to_string()))?;
        let status = response.status();
        let body = response.text().await.unwrap_or_default();
        if status.is_success() {
            let token = serde_json::from_str::<TokenResponse>(&body)
                .map_err(|e| Attempt::Retry(format!("unreadable token response: {e}")))?;
            let lifetime = Duration::from_secs(token.expires_in).saturating_sub(EARLY_REFRESH);
            tracing::debug!(expires_in = token.expires_in, "Login with Amazon issued an access token");
            return Ok(CachedToken { access_token: token.access_token, refresh_at: Instant::now() + lifetime });
        }
        let error = serde_json::from_str::<TokenError>(&body).ok();
        let retryable = status.is_server_error()
            || status.as_u16() == 429
            || error.as_ref().is_some_and(|e| matches!(e.error.as_str(), "server_error" | "temporarily_unavailable"));
        if retryable {
            return Err(Attempt::Retry(format!("HTTP {status}")));
        }
        let (error, description) =
            error.map_or_else(|| (format!("HTTP {status}"), body), |e| (e.error, e.error_description));
        Err(Attempt::Fail(AmazonError::Credentials { error, description }))
    }
}
