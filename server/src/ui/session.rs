//! Dashboard sessions: the API key exchanged for a signed cookie (decision 0013).
//!
//! The cookie is `v1.<role>.<expires>.<nonce>.<mac>`, the MAC an HMAC-SHA256 of everything
//! before it under a key derived from the API and admin keys. Nothing is stored on the server.

use axum::http::HeaderMap;
use chrono::Utc;
use ring::hmac;

use crate::config::Config;

/// The cookie's name.
pub const COOKIE: &str = "slate_session";

/// How long a sign-in lasts.
pub const LIFETIME_SECS: i64 = 7 * 24 * 3600;

/// What a signed-in person may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Everything the API key allows.
    User,
    /// Also the admin operations.
    Admin,
}

impl Role {
    fn as_str(self) -> &'static str {
        match self {
            Role::User => "user",
            Role::Admin => "admin",
        }
    }
}

/// Who is looking at a page.
#[derive(Debug, Clone)]
pub struct Viewer {
    /// What they may do.
    pub role: Role,
    /// The token their state-changing requests carry; `None` when the server has no key (and
    /// so no sessions).
    pub csrf: Option<String>,
    /// Whether the server asks for a key at all (a sign-out link makes sense).
    pub signed_in: bool,
}

impl Viewer {
    /// Whether admin actions are offered.
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }
}

fn key(config: &Config) -> Option<hmac::Key> {
    let api = config.api_key.as_ref()?;
    // Both keys go into the derivation, so rotating either signs everyone out.
    let admin = config.admin_key.as_ref().map(|k| k.expose()).unwrap_or("");
    let root = hmac::Key::new(hmac::HMAC_SHA256, api.expose().as_bytes());
    let derived = hmac::sign(&root, format!("slate-session-v1\0{admin}").as_bytes());
    Some(hmac::Key::new(hmac::HMAC_SHA256, derived.as_ref()))
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// The role a presented key grants: the admin key is admin; the API key is admin too when no
/// separate admin key is set (the admin routes then take it).
pub fn role_for_key(config: &Config, presented: &str) -> Option<Role> {
    let same = slate_activities::config::same_secret;
    if let Some(a) = &config.admin_key
        && same(presented, a.expose())
    {
        return Some(Role::Admin);
    }
    let api = config.api_key.as_ref()?;
    if same(presented, api.expose()) {
        return Some(if config.admin_key.is_none() {
            Role::Admin
        } else {
            Role::User
        });
    }
    None
}

/// A new session cookie's value.
pub fn issue(config: &Config, role: Role) -> Option<String> {
    let key = key(config)?;
    let expires = Utc::now().timestamp() + LIFETIME_SECS;
    let nonce = uuid::Uuid::new_v4().simple().to_string();
    let body = format!("v1.{}.{expires}.{nonce}", role.as_str());
    let mac = hmac::sign(&key, body.as_bytes());
    Some(format!("{body}.{}", hex(mac.as_ref())))
}

/// The role a cookie value carries, if it is ours, intact and not expired.
pub fn verify(config: &Config, value: &str) -> Option<Role> {
    let key = key(config)?;
    let (body, mac) = value.rsplit_once('.')?;
    hmac::verify(&key, body.as_bytes(), &unhex(mac)?).ok()?;
    let mut parts = body.split('.');
    let (v, role, expires) = (parts.next()?, parts.next()?, parts.next()?);
    if v != "v1" || expires.parse::<i64>().ok()? < Utc::now().timestamp() {
        return None;
    }
    match role {
        "user" => Some(Role::User),
        "admin" => Some(Role::Admin),
        _ => None,
    }
}

/// The CSRF token that goes with a cookie value.
pub fn csrf_token(config: &Config, cookie: &str) -> Option<String> {
    let key = key(config)?;
    let mac = hmac::sign(&key, format!("csrf\0{cookie}").as_bytes());
    Some(hex(&mac.as_ref()[..16]))
}

/// The session cookie's value in a request, if any.
pub fn cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all("cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v.to_string())
}

/// A request's session: its role and the CSRF token it must send, if its cookie is valid.
pub fn from_headers(config: &Config, headers: &HeaderMap) -> Option<(Role, String)> {
    let c = cookie(headers)?;
    let role = verify(config, &c)?;
    Some((role, csrf_token(config, &c)?))
}

/// Who is looking: with no key configured, everyone may do everything (loopback only, checked
/// at start-up); otherwise the session decides, and no session is nobody.
pub fn viewer(config: &Config, headers: &HeaderMap) -> Option<Viewer> {
    if config.api_key.is_none() {
        return Some(Viewer {
            role: Role::Admin,
            csrf: None,
            signed_in: false,
        });
    }
    let (role, csrf) = from_headers(config, headers)?;
    Some(Viewer {
        role,
        csrf: Some(csrf),
        signed_in: true,
    })
}

/// The `Set-Cookie` value for a new session.
pub fn set_cookie(config: &Config, value: &str) -> String {
    let secure = config
        .public_url
        .as_deref()
        .is_some_and(|u| u.starts_with("https://"));
    format!(
        "{COOKIE}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={LIFETIME_SECS}{}",
        if secure { "; Secure" } else { "" }
    )
}

/// The `Set-Cookie` value that signs out.
pub fn clear_cookie() -> String {
    format!("{COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(api: Option<&str>, admin: Option<&str>) -> Config {
        let mut vars = vec![];
        if let Some(a) = api {
            vars.push(("SLATE_API_KEY", a));
        }
        if let Some(a) = admin {
            vars.push(("SLATE_ADMIN_KEY", a));
        }
        Config::load(None, |k| {
            vars.iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        })
        .unwrap()
    }

    #[test]
    fn a_cookie_carries_its_role_and_cannot_be_forged() {
        let c = config(Some("api"), Some("adm"));
        assert_eq!(role_for_key(&c, "api"), Some(Role::User));
        assert_eq!(role_for_key(&c, "adm"), Some(Role::Admin));
        assert_eq!(role_for_key(&c, "nope"), None);
        let user = issue(&c, Role::User).unwrap();
        assert_eq!(verify(&c, &user), Some(Role::User));
        // Promoting oneself breaks the MAC.
        let forged = user.replacen(".user.", ".admin.", 1);
        assert_eq!(verify(&c, &forged), None);
        assert_eq!(verify(&c, "garbage"), None);
        assert_eq!(verify(&c, ""), None);
        // Another server's keys, or rotated keys, do not accept it.
        assert_eq!(verify(&config(Some("api"), Some("other")), &user), None);
        // The CSRF token is tied to the cookie.
        let other = issue(&c, Role::User).unwrap();
        assert_ne!(csrf_token(&c, &user), csrf_token(&c, &other));
        // Without a separate admin key, the API key is the admin key.
        let c = config(Some("api"), None);
        assert_eq!(role_for_key(&c, "api"), Some(Role::Admin));
        // Without any key there are no sessions, and everyone is admin on loopback.
        let c = config(None, None);
        assert!(issue(&c, Role::User).is_none());
        assert!(viewer(&c, &HeaderMap::new()).unwrap().is_admin());
    }

    #[test]
    fn an_expired_cookie_is_refused() {
        let c = config(Some("api"), None);
        let k = key(&c).unwrap();
        let body = format!("v1.admin.{}.n", Utc::now().timestamp() - 1);
        let v = format!("{body}.{}", hex(hmac::sign(&k, body.as_bytes()).as_ref()));
        assert_eq!(verify(&c, &v), None);
        let body = format!("v1.admin.{}.n", Utc::now().timestamp() + 60);
        let v = format!("{body}.{}", hex(hmac::sign(&k, body.as_bytes()).as_ref()));
        assert_eq!(verify(&c, &v), Some(Role::Admin));
    }
}
