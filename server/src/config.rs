//! Configuration: defaults, then a TOML file, then `SLATE_*` environment variables. Validated
//! once at start-up with messages that say what to set. Secrets never print.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use slate_activities::Secret;

/// What the file may set (every field optional; the environment wins).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    data_dir: Option<PathBuf>,
    database_url: Option<String>,
    listen: Option<String>,
    public_url: Option<String>,
    workers: Option<usize>,
    lease_secs: Option<u64>,
    body_limit_bytes: Option<usize>,
    concurrency: Option<String>,
    edit_window_secs: Option<u64>,
    vision_fail_rate: Option<f64>,
}

/// The server's settings.
#[derive(Clone)]
pub struct Config {
    /// Where the SQLite database and the blobs live.
    pub data_dir: PathBuf,
    /// `postgres://...` or `sqlite://...` (default: SQLite under the data directory).
    pub database_url: String,
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Our public URL, for webhooks and callbacks.
    pub public_url: Option<String>,
    /// Runs executed at once by this process.
    pub workers: usize,
    /// Lease length.
    pub lease: Duration,
    /// Largest request body.
    pub body_limit: usize,
    /// Concurrency limits by key (`fal=4,video=2`).
    pub concurrency: Vec<(String, u32)>,
    /// The qualification edit window.
    pub edit_window: Duration,
    /// Share of frames the local vision check rejects on purpose.
    pub vision_fail_rate: f64,
    /// Key for the API (`SLATE_API_KEY`).
    pub api_key: Option<Secret>,
    /// Key for admin operations (`SLATE_ADMIN_KEY`).
    pub admin_key: Option<Secret>,
    /// Shared secret of webhook senders (`SLATE_WEBHOOK_SECRET`).
    pub webhook_secret: Option<Secret>,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("data_dir", &self.data_dir)
            .field(
                "database_url",
                &slate_engine::store::redact_url(&self.database_url),
            )
            .field("listen", &self.listen)
            .field("public_url", &self.public_url)
            .field("workers", &self.workers)
            .field("api_key", &self.api_key.as_ref().map(|_| "set"))
            .field("admin_key", &self.admin_key.as_ref().map(|_| "set"))
            .field(
                "webhook_secret",
                &self.webhook_secret.as_ref().map(|_| "set"),
            )
            .finish()
    }
}

fn parse_limits(s: &str) -> Result<Vec<(String, u32)>, String> {
    s.split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p
                .split_once('=')
                .ok_or_else(|| format!("`{p}` is not key=number (for example fal=4)"))?;
            let n: u32 = v
                .trim()
                .parse()
                .map_err(|_| format!("`{v}` in `{p}` is not a whole number"))?;
            if n == 0 {
                return Err(format!("the limit of `{k}` must be at least 1"));
            }
            Ok((k.trim().to_string(), n))
        })
        .collect()
}

impl Config {
    /// Load: defaults, then `file` (or `<data dir>/slate.toml` if it exists), then the
    /// environment (through `env`, so tests can pass their own).
    pub fn load(
        file: Option<&Path>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Config, String> {
        let data_dir = env("SLATE_DATA_DIR").map(PathBuf::from);
        let file_path = file.map(Path::to_path_buf).or_else(|| {
            let p = data_dir
                .clone()
                .unwrap_or_else(|| PathBuf::from(".slate"))
                .join("slate.toml");
            p.exists().then_some(p)
        });
        let f: FileConfig = match &file_path {
            Some(p) => {
                let text = std::fs::read_to_string(p)
                    .map_err(|e| format!("cannot read {}: {e}", p.display()))?;
                toml::from_str(&text).map_err(|e| {
                    format!("{} is not a valid Slate configuration: {e}", p.display())
                })?
            }
            None => FileConfig::default(),
        };
        let data_dir = data_dir
            .or(f.data_dir)
            .unwrap_or_else(|| PathBuf::from(".slate"));
        let database_url = env("SLATE_DATABASE_URL")
            .or(f.database_url)
            .unwrap_or_else(|| format!("sqlite://{}", data_dir.join("slate.db").display()));
        if !(database_url.starts_with("postgres://")
            || database_url.starts_with("postgresql://")
            || database_url.starts_with("sqlite:"))
        {
            return Err(format!(
                "SLATE_DATABASE_URL `{}` is neither postgres://... nor sqlite://...",
                slate_engine::store::redact_url(&database_url)
            ));
        }
        let listen_s = env("SLATE_LISTEN")
            .or(f.listen)
            .unwrap_or_else(|| "127.0.0.1:8080".into());
        let listen: SocketAddr = listen_s.parse().map_err(|_| {
            format!("SLATE_LISTEN `{listen_s}` is not an address such as 127.0.0.1:8080")
        })?;
        let num = |k: &str, v: Option<String>| -> Result<Option<u64>, String> {
            v.map(|s| {
                s.parse::<u64>()
                    .map_err(|_| format!("{k} `{s}` is not a whole number"))
            })
            .transpose()
        };
        let workers = num("SLATE_WORKERS", env("SLATE_WORKERS"))?
            .map(|v| v as usize)
            .or(f.workers)
            .unwrap_or(16);
        if workers == 0 {
            return Err("SLATE_WORKERS must be at least 1".into());
        }
        let lease = Duration::from_secs(
            num("SLATE_LEASE_SECS", env("SLATE_LEASE_SECS"))?
                .or(f.lease_secs)
                .unwrap_or(15),
        );
        if lease < Duration::from_secs(2) {
            return Err("SLATE_LEASE_SECS must be at least 2".into());
        }
        let body_limit = num("SLATE_BODY_LIMIT_BYTES", env("SLATE_BODY_LIMIT_BYTES"))?
            .map(|v| v as usize)
            .or(f.body_limit_bytes)
            .unwrap_or(1 << 20);
        let concurrency = parse_limits(
            &env("SLATE_CONCURRENCY")
                .or(f.concurrency)
                .unwrap_or_default(),
        )
        .map_err(|e| format!("SLATE_CONCURRENCY: {e}"))?;
        let edit_window = Duration::from_secs(
            num("SLATE_EDIT_WINDOW_SECS", env("SLATE_EDIT_WINDOW_SECS"))?
                .or(f.edit_window_secs)
                .unwrap_or(10),
        );
        let vision_fail_rate = match env("SLATE_LOCAL_VISION_FAIL_RATE") {
            Some(v) => v
                .parse::<f64>()
                .map_err(|_| format!("SLATE_LOCAL_VISION_FAIL_RATE `{v}` is not a number"))?,
            None => f.vision_fail_rate.unwrap_or(0.0),
        };
        if !(0.0..=1.0).contains(&vision_fail_rate) {
            return Err("SLATE_LOCAL_VISION_FAIL_RATE must be between 0 and 1".into());
        }
        let secret = |k: &str| env(k).filter(|v| !v.is_empty()).map(Secret::new);
        Ok(Config {
            data_dir,
            database_url,
            listen,
            public_url: env("SLATE_PUBLIC_URL")
                .or(f.public_url)
                .map(|u| u.trim_end_matches('/').to_string()),
            workers,
            lease,
            body_limit,
            concurrency,
            edit_window,
            vision_fail_rate,
            api_key: secret("SLATE_API_KEY"),
            admin_key: secret("SLATE_ADMIN_KEY"),
            webhook_secret: secret("SLATE_WEBHOOK_SECRET"),
        })
    }

    /// From the process environment.
    pub fn from_env(file: Option<&Path>) -> Result<Config, String> {
        Self::load(file, |k| std::env::var(k).ok())
    }

    /// Checks that only matter for a server that listens beyond this machine.
    pub fn check_for_serving(&self) -> Result<(), String> {
        if self.api_key.is_none() && !self.listen.ip().is_loopback() {
            return Err(format!(
                "slate serve listens on {} without an API key: set SLATE_API_KEY (and SLATE_ADMIN_KEY) or listen on 127.0.0.1",
                self.listen
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn load(vars: &[(&str, &str)]) -> Result<Config, String> {
        let m: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::load(None, |k| m.get(k).cloned())
    }

    #[test]
    fn defaults_are_sqlite_under_the_data_dir() {
        let c = load(&[("SLATE_DATA_DIR", "/tmp/x")]).unwrap();
        assert_eq!(c.database_url, "sqlite:///tmp/x/slate.db");
        assert_eq!(c.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(c.edit_window, Duration::from_secs(10));
    }

    #[test]
    fn bad_values_say_what_to_set() {
        assert!(
            load(&[("SLATE_LISTEN", "nowhere")])
                .unwrap_err()
                .contains("SLATE_LISTEN")
        );
        assert!(
            load(&[("SLATE_CONCURRENCY", "fal=zero")])
                .unwrap_err()
                .contains("SLATE_CONCURRENCY")
        );
        assert!(
            load(&[("SLATE_DATABASE_URL", "mysql://x")])
                .unwrap_err()
                .contains("neither")
        );
        let c = load(&[
            ("SLATE_CONCURRENCY", "fal=4, video=2"),
            ("SLATE_API_KEY", "k"),
        ])
        .unwrap();
        assert_eq!(c.concurrency, vec![("fal".into(), 4), ("video".into(), 2)]);
        assert!(!format!("{c:?}").contains("\"k\""));
        let c = load(&[("SLATE_LISTEN", "0.0.0.0:80")]).unwrap();
        assert!(c.check_for_serving().unwrap_err().contains("SLATE_API_KEY"));
    }

    #[test]
    fn the_file_is_read_and_the_environment_wins() {
        let dir = std::env::temp_dir().join(format!("slate-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("slate.toml");
        std::fs::write(&p, "listen = \"127.0.0.1:9000\"\nworkers = 4\n").unwrap();
        let c = Config::load(Some(&p), |k| {
            (k == "SLATE_WORKERS").then(|| "8".to_string())
        })
        .unwrap();
        assert_eq!(c.listen.port(), 9000);
        assert_eq!(c.workers, 8);
        std::fs::write(&p, "nonsense = 1\n").unwrap();
        assert!(
            Config::load(Some(&p), |_| None)
                .unwrap_err()
                .contains("not a valid")
        );
    }
}
