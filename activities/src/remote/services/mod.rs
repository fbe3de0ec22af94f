//! The production services of the spec: the brain (knowledge), the tasks service (video and
//! voice on GPUs, with callbacks) and the last-frame service (media operations). Every endpoint
//! the spec lists has a method here; the activity traits are implemented on top.

use serde_json::Value;

use crate::error::Result;
use crate::http::{self, Answer};

pub(crate) async fn call(provider: &str, rb: reqwest::RequestBuilder) -> Result<Answer> {
    let a = http::send(provider, rb).await?;
    if !a.status.is_success() {
        let msg = a
            .body
            .get("detail")
            .or_else(|| a.body.get("error"))
            .or_else(|| a.body.get("message"))
            .map(|m| match m {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            })
            .unwrap_or_else(|| http::truncate(&a.raw, 300));
        return Err(http::status_error(
            provider,
            &a,
            format!("HTTP {}: {msg}", a.status.as_u16()),
        ));
    }
    Ok(a)
}

/// Percent-encode a path segment or query value.
pub fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

mod brain;
mod last_frame;
mod tasks;

pub use brain::*;
pub use last_frame::*;
pub use tasks::*;
