//! `slate doctor`: will the configured providers work, and if not, what to set.
//!
//! Two parts. The offline part ([`offline`]) needs no network and runs at every start: a
//! retired or unpriced model, remote services with no URL they can fetch our media from, or
//! callbacks that would be refused make `slate serve` and `slate worker` refuse to start,
//! naming the variable. The online part ([`online`]) asks the providers: each key, each model
//! served and its price against the table, and a round trip of a small file through every way
//! Slate hands media over (fal storage, the media URL, the public URL and its webhook path).
//! Every finding names the variable to set.
//!
//! (Over 600 lines on purpose: one report: each provider's checks, offline and online, produce the
//! same findings format and are read as a list by the CLI, the API and the dashboard.)

use std::time::Duration;

use serde::Serialize;
use serde_json::Value;

use crate::blob::Blobs;
use crate::config::{FalSettings, ProviderSettings, VideoProvider};
use crate::pricing::{PRICES_AS_OF, Prices, retired};

/// How a check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// As it should be.
    Ok,
    /// Works, but worth a look.
    Warn,
    /// Will not work: the start refuses it (offline) or the first real run would fail.
    Fail,
}

/// One finding.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Finding {
    /// What was checked (`fal.ai key`, `media`, `price of fal-ai/nano-banana-2`...).
    pub check: String,
    /// How it came out.
    pub status: Status,
    /// What was found and what to do, in plain words. Never a secret.
    pub message: String,
    /// The variable that fixes it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub variable: Option<String>,
}

fn ok(check: impl Into<String>, message: impl Into<String>) -> Finding {
    Finding {
        check: check.into(),
        status: Status::Ok,
        message: message.into(),
        variable: None,
    }
}

fn bad(
    status: Status,
    check: impl Into<String>,
    message: impl Into<String>,
    variable: &str,
) -> Finding {
    Finding {
        check: check.into(),
        status,
        message: message.into(),
        variable: Some(variable.to_string()),
    }
}

/// The doctor's report.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Report {
    /// True when nothing failed.
    pub ok: bool,
    /// Every finding, offline ones first.
    pub findings: Vec<Finding>,
}

impl Report {
    /// A report of `findings`.
    pub fn of(findings: Vec<Finding>) -> Report {
        Report {
            ok: findings.iter().all(|f| f.status != Status::Fail),
            findings,
        }
    }

    /// The failures, one line each (for the start's refusal).
    pub fn failures(&self) -> Vec<String> {
        self.findings
            .iter()
            .filter(|f| f.status == Status::Fail)
            .map(|f| match &f.variable {
                Some(v) => format!("{}: {} [{v}]", f.check, f.message),
                None => format!("{}: {}", f.check, f.message),
            })
            .collect()
    }
}

/// The models `s` would call, each with the variable that names it.
pub fn models(s: &ProviderSettings) -> Vec<(String, &'static str)> {
    let mut out = vec![];
    if let Some(f) = &s.fal {
        out.push((f.image_model.clone(), "SLATE_FAL_IMAGE_MODEL"));
        out.push((f.edit_model.clone(), "SLATE_FAL_EDIT_MODEL"));
        out.push((f.vision_model.clone(), "SLATE_FAL_VISION_MODEL"));
        if matches!(s.video, VideoProvider::Fal | VideoProvider::Auto) {
            out.push((f.video_model.clone(), "SLATE_FAL_VIDEO_MODEL"));
        }
        if let Some(m) = &f.music_model {
            out.push((m.clone(), "SLATE_FAL_MUSIC_MODEL"));
        }
    }
    if let Some(o) = &s.openrouter {
        out.push((o.model.clone(), "SLATE_OPENROUTER_MODEL"));
    }
    out
}

/// Whether a spec service (tasks, last-frame, brain) is configured: they fetch media by URL.
fn spec_services(s: &ProviderSettings) -> Vec<&'static str> {
    let mut v = vec![];
    if s.tasks.is_some() {
        v.push("the tasks service");
    }
    if s.last_frame.is_some() {
        v.push("the last-frame service");
    }
    if s.brain.is_some() {
        v.push("the brain service");
    }
    v
}

/// The checks that need no network; `today` is `YYYY-MM-DD`.
pub fn offline(s: &ProviderSettings, blobs: &Blobs, today: &str) -> Vec<Finding> {
    let mut out = vec![];
    if !s.any_remote() {
        out.push(ok(
            "providers",
            "every activity runs in the local studio: no keys, nothing paid",
        ));
    }
    for (model, var) in models(s) {
        if let Some(r) = retired(&model, today) {
            out.push(bad(
                Status::Fail,
                format!("model {model}"),
                format!(
                    "{model} was retired on {} ({}); set {var} to {} or another served model",
                    r.on, r.source, r.replacement
                ),
                var,
            ));
        }
    }
    let prices = Prices::new(&s.prices);
    let missing = prices.missing(s);
    for (model, var) in &missing {
        out.push(bad(
            Status::Fail,
            format!("price of {model}"),
            format!(
                "no price for {model} ({var}): Slate does not price one model as another; set SLATE_PRICES={{\"{model}\": <dollars per unit>}} (a language model: \"{model}:input\" and \"{model}:output\" per token)"
            ),
            "SLATE_PRICES",
        ));
    }
    if s.any_remote() && missing.is_empty() {
        out.push(ok(
            "prices",
            format!(
                "every configured model is priced (table of {PRICES_AS_OF}, SLATE_PRICES over it)"
            ),
        ));
    }
    let services = spec_services(s);
    if !services.is_empty() {
        let who = services.join(", ");
        let fetch = if services.len() == 1 {
            "fetches"
        } else {
            "fetch"
        };
        match blobs.fetch_route() {
            Some(route) => out.push(ok(
                "media",
                format!("{who} {fetch} our images and clips by {route}"),
            )),
            None if s.public_url.is_some() => out.push(bad(
                Status::Fail,
                "media",
                format!(
                    "{who} {fetch} our images and clips by URL, and signing /media URLs under SLATE_PUBLIC_URL needs a key: set SLATE_MEDIA_SECRET (or SLATE_WEBHOOK_SECRET)"
                ),
                "SLATE_MEDIA_SECRET",
            )),
            None => out.push(bad(
                Status::Fail,
                "media",
                format!(
                    "{who} {fetch} our images and clips by https URL, and none can be made: set SLATE_PUBLIC_URL (where they reach this server; with SLATE_MEDIA_SECRET or SLATE_WEBHOOK_SECRET), or SLATE_MEDIA_URL (a public bucket or CDN over the blobs), or keep blobs in S3 (SLATE_BLOB_URL=s3://…)"
                ),
                "SLATE_PUBLIC_URL",
            )),
        }
    }
    if s.fal.is_some() {
        out.push(ok(
            "fal.ai media",
            "images and clips go to fal by fal storage uploads, as its official clients do",
        ));
    }
    if let Some(p) = &s.public_url
        && p.starts_with("http://")
        && !services.is_empty()
    {
        out.push(bad(
            Status::Warn,
            "public URL",
            format!("SLATE_PUBLIC_URL {p} is not https: the spec's services call back and fetch over https"),
            "SLATE_PUBLIC_URL",
        ));
    }
    let calls_back = s.public_url.is_some() && (s.tasks.is_some() || s.last_frame.is_some());
    if calls_back && !s.webhook_auth_off && s.webhook_secret.is_none() {
        out.push(bad(
            Status::Fail,
            "webhooks",
            "the services' callbacks would be refused: webhooks need SLATE_WEBHOOK_SECRET (our callback URLs carry a token derived from it), or SLATE_WEBHOOK_AUTH=off to take them unauthenticated",
            "SLATE_WEBHOOK_SECRET",
        ));
    }
    if s.webhook_auth_off {
        out.push(bad(
            Status::Warn,
            "webhooks",
            "SLATE_WEBHOOK_AUTH=off: anyone who reaches this server can send webhooks (they only wake runs early)",
            "SLATE_WEBHOOK_AUTH",
        ));
    }
    out
}

/// Today, `YYYY-MM-DD` (UTC).
pub fn today() -> String {
    chrono::Utc::now().format("%Y-%m-%d").to_string()
}

struct Probe {
    http: reqwest::Client,
}

impl Probe {
    async fn get(&self, url: &str, auth: Option<(&str, String)>) -> Result<(u16, Value), String> {
        let mut rb = self.http.get(url);
        if let Some((h, v)) = auth {
            rb = rb.header(h, v);
        }
        let a = crate::http::send("doctor", rb)
            .await
            .map_err(|e| e.message)?;
        Ok((a.status.as_u16(), a.body))
    }
}

/// A price a provider's API states beside the one in force, as a finding.
fn compare_price(model: &str, theirs: f64, ours: f64, unit: &str) -> Finding {
    if (theirs - ours).abs() <= 1e-9 + ours.abs() * 0.005 {
        ok(
            format!("price of {model}"),
            format!("${ours} {unit}, as the provider states"),
        )
    } else {
        bad(
            Status::Warn,
            format!("price of {model}"),
            format!(
                "the provider states ${theirs} {unit}; Slate counts ${ours}: estimates and budgets are off until SLATE_PRICES says {{\"{model}\": {theirs}}}"
            ),
            "SLATE_PRICES",
        )
    }
}

async fn fal(s: &ProviderSettings, blobs: &Blobs, p: &Probe, out: &mut Vec<Finding>) {
    let Some(f) = &s.fal else { return };
    let auth = || Some(("Authorization", format!("Key {}", f.key.expose())));
    let ids: Vec<(String, &str)> = models(s)
        .into_iter()
        .filter(|(m, _)| {
            m.contains('/') && !matches!(s.openrouter.as_ref(), Some(o) if &o.model == m)
        })
        .collect();
    let query = ids
        .iter()
        .map(|(m, _)| format!("endpoint_id={}", crate::remote::services::urlencode(m)))
        .collect::<Vec<_>>()
        .join("&");
    match p
        .get(&format!("{}/models?{query}", f.api_url), auth())
        .await
    {
        Err(e) => out.push(bad(
            Status::Fail,
            "fal.ai",
            format!("fal's API did not answer: {e}"),
            "SLATE_FAL_API_URL",
        )),
        Ok((401 | 403, _)) => out.push(bad(
            Status::Fail,
            "fal.ai key",
            "fal refused FAL_KEY (401/403): set a valid key from fal.ai's dashboard",
            "FAL_KEY",
        )),
        Ok((200, body)) => {
            out.push(ok("fal.ai key", "fal accepted FAL_KEY"));
            served(&body, &ids, out);
        }
        Ok((code, body)) => out.push(bad(
            Status::Warn,
            "fal.ai models",
            format!(
                "fal's model list answered HTTP {code}: {}",
                crate::http::truncate(&body.to_string(), 200)
            ),
            "SLATE_FAL_API_URL",
        )),
    }
    fal_prices(s, p, &format!("{}/models/pricing?{query}", f.api_url), out).await;
    fal_storage(f, blobs, p, out).await;
}

/// Each model Slate uses, in fal's list `body`: served and active.
fn served(body: &Value, ids: &[(String, &str)], out: &mut Vec<Finding>) {
    let listed = body
        .get("models")
        .and_then(|m| m.as_array())
        .cloned()
        .unwrap_or_default();
    for (m, var) in ids {
        let found = listed
            .iter()
            .find(|x| x.get("endpoint_id").and_then(|e| e.as_str()) == Some(m));
        let status = found
            .and_then(|x| x.pointer("/metadata/status"))
            .and_then(|x| x.as_str())
            .unwrap_or("active");
        match found {
            None => out.push(bad(
                Status::Fail,
                format!("model {m}"),
                format!("fal does not serve {m}: set {var} to a model it serves"),
                var,
            )),
            Some(_) if status != "active" => out.push(bad(
                Status::Fail,
                format!("model {m}"),
                format!("fal lists {m} as {status}: set {var} to an active model"),
                var,
            )),
            Some(_) => out.push(ok(format!("model {m}"), "served by fal")),
        }
    }
}

/// Slate's prices against fal's pricing list at `url`.
async fn fal_prices(s: &ProviderSettings, p: &Probe, url: &str, out: &mut Vec<Finding>) {
    let Some(f) = &s.fal else { return };
    let auth = || Some(("Authorization", format!("Key {}", f.key.expose())));
    let prices = Prices::new(&s.prices);
    if let Ok((200, body)) = p.get(url, auth()).await {
        for e in body
            .get("prices")
            .and_then(|x| x.as_array())
            .into_iter()
            .flatten()
        {
            let (Some(m), Some(theirs)) = (
                e.get("endpoint_id").and_then(|x| x.as_str()),
                e.get("unit_price").and_then(|x| x.as_f64()),
            ) else {
                continue;
            };
            if let Some(ours) = prices.get(m) {
                let unit = e.get("unit").and_then(|x| x.as_str()).unwrap_or("unit");
                out.push(compare_price(m, theirs, ours, &format!("per {unit}")));
            }
        }
    }
}

/// A round trip through fal storage: what every fal request's media takes.
async fn fal_storage(f: &FalSettings, blobs: &Blobs, p: &Probe, out: &mut Vec<Finding>) {
    let probe = match blobs
        .put(
            &format!("doctor/probe-{}.txt", uuid::Uuid::new_v4().simple()),
            b"slate doctor probe".to_vec(),
        )
        .await
    {
        Ok(r) => r,
        Err(e) => {
            out.push(bad(Status::Fail, "blobs", e.message, "SLATE_BLOB_URL"));
            return;
        }
    };
    let client = crate::remote::fal::FalClient::new(f.clone());
    match client.upload(blobs, &probe).await {
        Err(e) => out.push(bad(
            Status::Fail,
            "fal storage",
            format!("uploading to fal storage failed: {}", e.message),
            "SLATE_FAL_STORAGE_URL",
        )),
        Ok(url) => match fetch(&p.http, &url).await {
            Ok(b) if b == b"slate doctor probe" => out.push(ok(
                "fal storage",
                "a file uploaded to fal storage comes back whole from the URL fal gave",
            )),
            Ok(_) => out.push(bad(
                Status::Fail,
                "fal storage",
                "the file fal storage gave back is not the one uploaded",
                "SLATE_FAL_STORAGE_URL",
            )),
            Err(e) => out.push(bad(
                Status::Fail,
                "fal storage",
                format!(
                    "the uploaded file cannot be fetched from {}: {e}",
                    crate::http::truncate(&url, 120)
                ),
                "SLATE_FAL_STORAGE_URL",
            )),
        },
    }
}

async fn fetch(http: &reqwest::Client, url: &str) -> Result<Vec<u8>, String> {
    let r = http.get(url).send().await.map_err(|e| e.to_string())?;
    if !r.status().is_success() {
        return Err(format!("HTTP {}", r.status().as_u16()));
    }
    r.bytes()
        .await
        .map(|b| b.to_vec())
        .map_err(|e| e.to_string())
}

async fn openrouter(s: &ProviderSettings, p: &Probe, out: &mut Vec<Finding>) {
    let Some(o) = &s.openrouter else { return };
    let auth = || Some(("Authorization", format!("Bearer {}", o.key.expose())));
    let models_url = o.models_url();
    let key_url = format!("{}/key", models_url.trim_end_matches("/models"));
    match p.get(&key_url, auth()).await {
        Ok((401 | 403, _)) => out.push(bad(
            Status::Fail,
            "OpenRouter key",
            "OpenRouter refused OPENROUTER_API_KEY (401/403): set a valid key",
            "OPENROUTER_API_KEY",
        )),
        Ok((200, _)) => out.push(ok(
            "OpenRouter key",
            "OpenRouter accepted OPENROUTER_API_KEY",
        )),
        Ok((code, _)) => out.push(bad(
            Status::Warn,
            "OpenRouter key",
            format!("OpenRouter's key check answered HTTP {code}"),
            "OPENROUTER_API_KEY",
        )),
        Err(e) => out.push(bad(
            Status::Fail,
            "OpenRouter",
            format!("OpenRouter did not answer: {e}"),
            "SLATE_OPENROUTER_URL",
        )),
    }
    let Ok((200, body)) = p.get(&models_url, auth()).await else {
        out.push(bad(
            Status::Warn,
            format!("model {}", o.model),
            format!("OpenRouter's model list ({models_url}) could not be read"),
            "SLATE_OPENROUTER_URL",
        ));
        return;
    };
    let found = body.get("data").and_then(|d| d.as_array()).and_then(|d| {
        d.iter()
            .find(|m| m.get("id").and_then(|i| i.as_str()) == Some(&o.model))
    });
    let Some(m) = found else {
        let hint = crate::pricing::RETIRED
            .iter()
            .find(|r| r.key == o.model)
            .map(|r| format!(" (its replacement: {})", r.replacement))
            .unwrap_or_default();
        out.push(bad(
            Status::Fail,
            format!("model {}", o.model),
            format!("OpenRouter does not serve {}{hint}: set SLATE_OPENROUTER_MODEL to a model it lists", o.model),
            "SLATE_OPENROUTER_MODEL",
        ));
        return;
    };
    out.push(ok(format!("model {}", o.model), "served by OpenRouter"));
    let prices = Prices::new(&s.prices);
    let num = |k: &str| {
        m.pointer(&format!("/pricing/{k}")).and_then(|v| match v {
            Value::String(s) => s.parse::<f64>().ok(),
            Value::Number(n) => n.as_f64(),
            _ => None,
        })
    };
    if let (Some(i), Some(o2), Some((ti, to))) =
        (num("prompt"), num("completion"), prices.tokens(&o.model))
    {
        out.push(compare_price(
            &format!("{}:input", o.model),
            i,
            ti,
            "per input token",
        ));
        out.push(compare_price(
            &format!("{}:output", o.model),
            o2,
            to,
            "per output token",
        ));
    }
}

/// A spec service to check: its name, settings, a harmless authenticated read, how its key is
/// sent, and the variables of its key and URL.
struct ServiceCheck<'a> {
    name: &'a str,
    settings: Option<&'a crate::config::ServiceSettings>,
    path: &'a str,
    header: &'a str,
    bearer: bool,
    key_var: &'a str,
    url_var: &'a str,
}

/// A spec service's key, checked with a harmless authenticated read.
async fn service(p: &Probe, out: &mut Vec<Finding>, c: ServiceCheck<'_>) {
    let Some(svc) = c.settings else { return };
    let name = c.name;
    let value = if c.bearer {
        format!("Bearer {}", svc.key.expose())
    } else {
        svc.key.expose().to_string()
    };
    match p
        .get(&format!("{}{}", svc.url, c.path), Some((c.header, value)))
        .await
    {
        Err(e) => out.push(bad(
            Status::Fail,
            name,
            format!("{name} did not answer at {}: {e}", svc.url),
            c.url_var,
        )),
        Ok((401 | 403, _)) => out.push(bad(
            Status::Fail,
            format!("{name} key"),
            format!("{name} refused {} (401/403)", c.key_var),
            c.key_var,
        )),
        Ok((code, _)) if code < 500 => out.push(ok(
            format!("{name} key"),
            format!("{name} accepted {}", c.key_var),
        )),
        Ok((code, _)) => out.push(bad(
            Status::Warn,
            name,
            format!("{name} answered HTTP {code}"),
            c.url_var,
        )),
    }
}

/// The checks that ask the providers (and our own public URL) over the network.
pub async fn online(s: &ProviderSettings, blobs: &Blobs) -> Vec<Finding> {
    let p = Probe {
        http: crate::http::client(Duration::from_secs(15)),
    };
    let mut out = vec![];
    fal(s, blobs, &p, &mut out).await;
    openrouter(s, &p, &mut out).await;
    service(
        &p,
        &mut out,
        ServiceCheck {
            name: "the tasks service",
            settings: s.tasks.as_ref(),
            path: "/api/v1/projects/slate-doctor/tasks",
            header: "X-API-Key",
            bearer: false,
            key_var: "TASK_API_KEY",
            url_var: "SLATE_TASKS_URL",
        },
    )
    .await;
    service(
        &p,
        &mut out,
        ServiceCheck {
            name: "the last-frame service",
            settings: s.last_frame.as_ref(),
            path: "/api/v1/status/slate-doctor",
            header: "Authorization",
            bearer: true,
            key_var: "LAST_FRAME_TOKEN",
            url_var: "SLATE_LAST_FRAME_URL",
        },
    )
    .await;
    service(
        &p,
        &mut out,
        ServiceCheck {
            name: "the brain service",
            settings: s.brain.as_ref(),
            path: "/api/v1/knowledge/context/slate-doctor",
            header: "X-API-Key",
            bearer: false,
            key_var: "BRAIN_SERVICE_API_KEY",
            url_var: "SLATE_BRAIN_URL",
        },
    )
    .await;
    if !spec_services(s).is_empty() {
        media_round_trip(blobs, &p, &mut out).await;
    }
    if let Some(base) = &s.public_url {
        public_url(base, &p, &mut out).await;
    }
    out
}

/// The spec's services fetch what [`Blobs::fetch_url`] gives: fetch it from here, as they will.
async fn media_round_trip(blobs: &Blobs, p: &Probe, out: &mut Vec<Finding>) {
    let var = match blobs.fetch_route() {
        Some("SLATE_MEDIA_URL") => "SLATE_MEDIA_URL",
        Some("presigned S3 URLs") => "SLATE_BLOB_URL",
        _ => "SLATE_PUBLIC_URL",
    };
    let body = format!("slate doctor {}", uuid::Uuid::new_v4());
    let r = match blobs
        .put(
            &format!("doctor/media-{}.txt", uuid::Uuid::new_v4().simple()),
            body.clone().into_bytes(),
        )
        .await
    {
        Ok(r) => r,
        Err(e) => return out.push(bad(Status::Fail, "blobs", e.message, "SLATE_BLOB_URL")),
    };
    let url = match blobs.fetch_url(&r).await {
        Ok(u) => u,
        Err(e) => return out.push(bad(Status::Fail, "media URL", e.message, var)),
    };
    match fetch(&p.http, &url).await {
        Ok(b) if b == body.as_bytes() => out.push(ok(
            "media URL",
            format!("a file fetched back through {} came back whole", blobs.fetch_route().unwrap_or("?")),
        )),
        Ok(_) => out.push(bad(
            Status::Fail,
            "media URL",
            "the media URL answers, but with other bytes than the blob's: it does not serve this server's blobs",
            var,
        )),
        Err(e) => out.push(bad(
            Status::Fail,
            "media URL",
            format!("the services could not fetch our media: {} answered {e}", crate::http::truncate(url.split('?').next().unwrap_or(""), 120)),
            var,
        )),
    }
}

/// Our public URL reaches a Slate, and its webhook path reaches our webhooks.
async fn public_url(base: &str, p: &Probe, out: &mut Vec<Finding>) {
    match p.get(&format!("{base}/health"), None).await {
        Ok((200, b)) if b.get("status").and_then(|s| s.as_str()) == Some("ok") => {
            out.push(ok("public URL", format!("{base}/health answers")))
        }
        Ok((code, _)) => out.push(bad(
            Status::Fail,
            "public URL",
            format!("{base}/health answered HTTP {code}, not Slate's health: providers cannot reach this server there"),
            "SLATE_PUBLIC_URL",
        )),
        Err(e) => out.push(bad(
            Status::Fail,
            "public URL",
            format!("{base} does not answer: {e}"),
            "SLATE_PUBLIC_URL",
        )),
    }
    // An unauthenticated, empty callback: our webhook answers 401 (or 422 when webhooks are
    // unauthenticated) and does nothing; anything else means the path does not reach us.
    let r = p
        .http
        .post(format!("{base}/api/webhooks/stitch-complete"))
        .json(&serde_json::json!({}))
        .send()
        .await;
    match r.map(|r| r.status().as_u16()) {
        Ok(401 | 422) => out.push(ok("webhook path", format!("{base}/api/webhooks/… reaches Slate's webhooks"))),
        Ok(code) => out.push(bad(
            Status::Fail,
            "webhook path",
            format!("{base}/api/webhooks/stitch-complete answered HTTP {code}: callbacks would not reach Slate"),
            "SLATE_PUBLIC_URL",
        )),
        Err(e) => out.push(bad(
            Status::Fail,
            "webhook path",
            format!("{base}/api/webhooks/… does not answer: {e}"),
            "SLATE_PUBLIC_URL",
        )),
    }
}

/// Offline and online checks together.
pub async fn run(s: &ProviderSettings, blobs: &Blobs) -> Report {
    let mut f = offline(s, blobs, &today());
    f.extend(online(s, blobs).await);
    Report::of(f)
}
