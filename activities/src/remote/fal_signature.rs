//! fal.ai's signed webhooks: each delivery carries an ED25519 signature over its request id,
//! user id, timestamp and the SHA-256 of its body, by one of the keys fal publishes as a JWKS.
//!
//! Headers: `X-Fal-Webhook-Request-Id`, `X-Fal-Webhook-User-Id`, `X-Fal-Webhook-Timestamp`
//! (Unix seconds), `X-Fal-Webhook-Signature` (hex). The signed message is those three values
//! and the body's SHA-256 in hex, joined by newlines. A timestamp more than 300 s from ours is
//! refused (a replay). The keys are fetched once and kept for a day; a signature no kept key
//! verifies makes one refetch (fal rotates keys), at most once a minute.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde::Deserialize;

/// The headers of a signed delivery, as received.
#[derive(Debug, Clone, Default)]
pub struct SignedHeaders {
    /// `X-Fal-Webhook-Request-Id`.
    pub request_id: Option<String>,
    /// `X-Fal-Webhook-User-Id`.
    pub user_id: Option<String>,
    /// `X-Fal-Webhook-Timestamp`.
    pub timestamp: Option<String>,
    /// `X-Fal-Webhook-Signature`.
    pub signature: Option<String>,
}

/// How far a delivery's timestamp may be from our clock.
pub const MAX_SKEW_SECS: i64 = 300;

/// The message fal signs.
pub fn message(request_id: &str, user_id: &str, timestamp: &str, body: &[u8]) -> Vec<u8> {
    let digest = ring::digest::digest(&ring::digest::SHA256, body);
    let hex: String = digest.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    format!("{request_id}\n{user_id}\n{timestamp}\n{hex}").into_bytes()
}

#[derive(Deserialize)]
struct Jwks {
    keys: Vec<Jwk>,
}

#[derive(Deserialize)]
struct Jwk {
    #[serde(default)]
    kty: String,
    #[serde(default)]
    crv: String,
    #[serde(default)]
    x: String,
}

/// fal's webhook keys, fetched from its JWKS and kept.
#[derive(Debug)]
pub struct FalWebhookKeys {
    http: reqwest::Client,
    jwks_url: String,
    kept: Mutex<Option<(Instant, Vec<Vec<u8>>)>>,
    last_fetch: Mutex<Option<Instant>>,
}

impl FalWebhookKeys {
    /// Keys from `jwks_url`.
    pub fn new(jwks_url: impl Into<String>) -> Self {
        FalWebhookKeys {
            http: crate::http::client(Duration::from_secs(10)),
            jwks_url: jwks_url.into(),
            kept: Mutex::new(None),
            last_fetch: Mutex::new(None),
        }
    }

    async fn fetch(&self) -> Result<Vec<Vec<u8>>, String> {
        *self.last_fetch.lock().unwrap_or_else(|e| e.into_inner()) = Some(Instant::now());
        let r = self
            .http
            .get(&self.jwks_url)
            .send()
            .await
            .map_err(|e| format!("fal's signing keys could not be fetched: {e}"))?;
        if !r.status().is_success() {
            return Err(format!(
                "fal's signing keys could not be fetched: HTTP {}",
                r.status().as_u16()
            ));
        }
        let jwks: Jwks = r
            .json()
            .await
            .map_err(|e| format!("fal's JWKS is not readable: {e}"))?;
        let keys: Vec<Vec<u8>> = jwks
            .keys
            .iter()
            .filter(|k| k.kty == "OKP" && k.crv == "Ed25519")
            .filter_map(|k| {
                base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .decode(k.x.trim_end_matches('='))
                    .ok()
            })
            .filter(|k| k.len() == 32)
            .collect();
        if keys.is_empty() {
            return Err("fal's JWKS holds no Ed25519 key".into());
        }
        *self.kept.lock().unwrap_or_else(|e| e.into_inner()) = Some((Instant::now(), keys.clone()));
        Ok(keys)
    }

    async fn keys(&self, refresh: bool) -> Result<Vec<Vec<u8>>, String> {
        let kept = self.kept.lock().unwrap_or_else(|e| e.into_inner()).clone();
        match kept {
            Some((at, keys)) if at.elapsed() < Duration::from_secs(24 * 3600) && !refresh => {
                Ok(keys)
            }
            Some((_, keys)) if refresh => {
                let recent = self
                    .last_fetch
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .is_some_and(|t| t.elapsed() < Duration::from_secs(60));
                if recent { Ok(keys) } else { self.fetch().await }
            }
            _ => self.fetch().await,
        }
    }

    /// Check a delivery: `Ok(request_id)` when a fal key signed it within the allowed skew of
    /// `now` (Unix seconds); else why not, for the 401.
    pub async fn verify(&self, h: &SignedHeaders, body: &[u8], now: i64) -> Result<String, String> {
        let (Some(req), Some(user), Some(ts), Some(sig)) =
            (&h.request_id, &h.user_id, &h.timestamp, &h.signature)
        else {
            return Err("a fal webhook must carry X-Fal-Webhook-Request-Id, -User-Id, -Timestamp and -Signature".into());
        };
        let t: i64 = ts
            .trim()
            .parse()
            .map_err(|_| "X-Fal-Webhook-Timestamp is not a Unix time".to_string())?;
        if (now - t).abs() > MAX_SKEW_SECS {
            return Err(format!(
                "the fal webhook's timestamp is {} s from ours (at most {MAX_SKEW_SECS} s): refused as a replay",
                (now - t).abs()
            ));
        }
        let sig = hex(sig.trim()).ok_or("X-Fal-Webhook-Signature is not hex")?;
        let msg = message(req, user, ts, body);
        for refresh in [false, true] {
            let keys = self.keys(refresh).await?;
            let good = keys.iter().any(|k| {
                ring::signature::UnparsedPublicKey::new(&ring::signature::ED25519, k)
                    .verify(&msg, &sig)
                    .is_ok()
            });
            if good {
                return Ok(req.clone());
            }
        }
        Err("the fal webhook's signature does not verify with fal's keys".into())
    }
}

fn hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_message_is_ids_time_and_body_hash_by_lines() {
        let m = message("r1", "u1", "1700000000", b"{}");
        assert_eq!(
            String::from_utf8(m).unwrap(),
            "r1\nu1\n1700000000\n44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
        );
        assert_eq!(hex("0aff"), Some(vec![10, 255]));
        assert_eq!(hex("0g"), None);
    }
}
