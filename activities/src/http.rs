//! Shared HTTP plumbing for the remote clients: one way to build a client, send a request,
//! read a JSON answer and turn transport failures into classified errors.

use std::sync::Once;
use std::time::Duration;

use reqwest::header::HeaderMap;
use reqwest::{RequestBuilder, StatusCode};
use serde_json::Value;

use crate::error::{ActivityError, ErrorKind, Result};

static TLS: Once = Once::new();

/// A client whose API calls have a total timeout of `timeout`, and whose downloads (which set
/// their own, longer total) may stall at most `timeout` between two reads. A hung provider
/// becomes a retryable `timeout`; a large clip arriving slowly is not cut.
pub(crate) fn client(timeout: Duration) -> reqwest::Client {
    TLS.call_once(|| {
        // reqwest is built without a bundled crypto provider; ring is installed once here.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
    reqwest::Client::builder()
        .timeout(timeout)
        .read_timeout(timeout)
        .connect_timeout(Duration::from_secs(10))
        .user_agent(concat!("slate/", env!("CARGO_PKG_VERSION")))
        .build()
        .expect("an HTTP client with default settings can always be built")
}

/// `Retry-After` in seconds (the HTTP-date form is rare for APIs and treated as absent).
pub(crate) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && *s >= 0.0)
        .map(Duration::from_secs_f64)
}

/// A transport failure, classified.
pub(crate) fn transport_error(provider: &str, e: reqwest::Error) -> ActivityError {
    let kind = if e.is_timeout() {
        ErrorKind::Timeout
    } else if e.is_connect() || e.is_request() || e.is_body() {
        ErrorKind::Network
    } else if e.is_decode() {
        ErrorKind::Malformed
    } else {
        ErrorKind::Network
    };
    // reqwest's message includes the URL, never headers: no secret can leak through it.
    ActivityError::new(provider, kind, e.to_string())
}

/// An answer: status, headers and the body parsed as JSON (`Null` for an empty body).
#[derive(Debug)]
pub(crate) struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
    pub raw: String,
}

/// Send a request and read its body as JSON. Transport errors are returned; HTTP error statuses
/// are not (the caller classifies them with the provider's rules).
pub(crate) async fn send(provider: &str, req: RequestBuilder) -> Result<Answer> {
    let resp = req.send().await.map_err(|e| transport_error(provider, e))?;
    let status = resp.status();
    let headers = resp.headers().clone();
    let raw = resp
        .text()
        .await
        .map_err(|e| transport_error(provider, e))?;
    let body = if raw.trim().is_empty() {
        Value::Null
    } else {
        match serde_json::from_str(&raw) {
            Ok(v) => v,
            Err(e) if status.is_success() => {
                return Err(ActivityError::new(
                    provider,
                    ErrorKind::Malformed,
                    format!("the answer is not valid JSON ({e})"),
                )
                .with_status(status.as_u16())
                .with_details(Value::String(truncate(&raw, 500))));
            }
            // An error page in HTML: keep it as text for the error message.
            Err(_) => Value::String(truncate(&raw, 500)),
        }
    };
    Ok(Answer {
        status,
        headers,
        body,
        raw,
    })
}

pub(crate) fn truncate(s: &str, n: usize) -> String {
    if s.len() <= n {
        return s.to_string();
    }
    let mut end = n;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

/// The common classification for services without special rules: 408, 429 and 5xx are worth
/// retrying (honouring `Retry-After`), other 4xx are final.
pub(crate) fn status_error(provider: &str, a: &Answer, message: String) -> ActivityError {
    let code = a.status.as_u16();
    let kind = match code {
        408 => ErrorKind::Timeout,
        429 => ErrorKind::RateLimited,
        401 | 403 => ErrorKind::Unauthorized,
        402 => ErrorKind::PaymentRequired,
        404 => ErrorKind::NotFound,
        500..=599 => ErrorKind::Unavailable,
        _ => ErrorKind::BadRequest,
    };
    let retryable = matches!(code, 408 | 429 | 500..=599);
    let mut e = ActivityError::new(provider, kind, message)
        .with_status(code)
        .with_details(a.body.clone())
        .retryable(retryable);
    e.retry_after = retry_after(&a.headers);
    e
}

/// Decode a JSON value into `T`, as a retryable `malformed_response` when it does not fit.
pub(crate) fn decode<T: serde::de::DeserializeOwned>(
    provider: &str,
    what: &str,
    v: &Value,
) -> Result<T> {
    T::deserialize(v).map_err(|e| {
        ActivityError::new(
            provider,
            ErrorKind::Malformed,
            format!("{what} does not have the expected shape: {e}"),
        )
        .with_details(Value::String(truncate(&v.to_string(), 500)))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_in_seconds() {
        let mut h = HeaderMap::new();
        h.insert("retry-after", "2".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_secs(2)));
        h.insert(
            "retry-after",
            "Wed, 21 Oct 2015 07:28:00 GMT".parse().unwrap(),
        );
        assert_eq!(retry_after(&h), None);
    }

    #[test]
    fn truncation_respects_characters() {
        assert_eq!(truncate("héllo", 2), "h…");
        assert_eq!(truncate("abc", 5), "abc");
    }
}
