//! Configuration: one loader for the server and the providers. Each setting has one name in
//! the environment (`SLATE_LISTEN`, `FAL_KEY`, ...) and one key in a TOML file (the same name
//! without `SLATE_`, in lower case: `listen`, `fal_key`); the `config` crate layers defaults,
//! then the file, then the environment, which wins. Values are checked once at start-up with
//! messages that name the variable to set. Secrets are taken from the environment only and
//! never print.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use slate_activities::{PROVIDER_VARIABLES, ProviderSettings, ProviderVars, Secret};

/// The server's own variables and whether each is a secret; the providers' are
/// [`PROVIDER_VARIABLES`]. (`SLATE_LOG` is read by the logger before anything else, and the
/// `SLATE_TEST_*` variables by the tests only.)
pub const SERVER_VARIABLES: &[(&str, bool)] = &[
    ("SLATE_DATA_DIR", false),
    ("SLATE_BLOB_URL", false),
    ("SLATE_DATABASE_URL", false),
    ("SLATE_LISTEN", false),
    ("SLATE_API_KEY", true),
    ("SLATE_ADMIN_KEY", true),
    ("SLATE_WORKERS", false),
    ("SLATE_LEASE_SECS", false),
    ("SLATE_CONCURRENCY", false),
    ("SLATE_BODY_LIMIT_BYTES", false),
    ("SLATE_EDIT_WINDOW_SECS", false),
    ("SLATE_PARALLEL_SCENES", false),
    ("SLATE_SCENE_ONE_PASS", false),
    ("SLATE_LOCAL_VISION_FAIL_RATE", false),
    ("MONGODB_URI", true),
];

/// Every variable Slate reads, server and providers, each once.
pub fn variables() -> impl Iterator<Item = (&'static str, bool)> {
    let mut seen = std::collections::HashSet::new();
    SERVER_VARIABLES
        .iter()
        .chain(PROVIDER_VARIABLES)
        .copied()
        .filter(move |(v, _)| seen.insert(*v))
}

/// A variable's key in a configuration file.
pub fn file_key(variable: &str) -> String {
    variable
        .strip_prefix("SLATE_")
        .unwrap_or(variable)
        .to_lowercase()
}

fn variable_of(key: &str) -> String {
    variables()
        .map(|(v, _)| v)
        .find(|v| file_key(v) == key)
        .map(str::to_string)
        .unwrap_or_else(|| key.to_string())
}

/// The server's settings as read, before they are checked. Defaults are here; the file and the
/// environment override them.
#[derive(Debug, Deserialize)]
#[serde(default)]
struct ServerVars {
    data_dir: Option<PathBuf>,
    blob_url: Option<String>,
    database_url: Option<String>,
    listen: String,
    workers: usize,
    lease_secs: u64,
    body_limit_bytes: usize,
    concurrency: String,
    edit_window_secs: u64,
    parallel_scenes: bool,
    scene_one_pass: bool,
    local_vision_fail_rate: f64,
    api_key: Option<String>,
    admin_key: Option<String>,
    mongodb_uri: Option<String>,
}

impl Default for ServerVars {
    fn default() -> Self {
        ServerVars {
            data_dir: None,
            blob_url: None,
            database_url: None,
            listen: "127.0.0.1:8080".into(),
            workers: 16,
            lease_secs: 15,
            body_limit_bytes: 1 << 20,
            concurrency: String::new(),
            edit_window_secs: 10,
            parallel_scenes: true,
            scene_one_pass: true,
            local_vision_fail_rate: 0.0,
            api_key: None,
            admin_key: None,
            mongodb_uri: None,
        }
    }
}

/// The server's settings.
#[derive(Clone)]
pub struct Config {
    /// Where the SQLite database and the blobs live.
    pub data_dir: PathBuf,
    /// Where the blobs live instead (`file:///dir` or `s3://bucket/prefix`), when set.
    pub blob_url: Option<String>,
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
    /// Concurrency limits by key as set (`images=8,video=off`): a number, or `None` to
    /// remove the key's limit. Keys not set keep their stored limit, or get
    /// [`DEFAULT_LIMITS`] when they have none.
    pub concurrency: Vec<(String, Option<u32>)>,
    /// The qualification edit window.
    pub edit_window: Duration,
    /// Scenes that do not need their predecessor's last frame are made at once.
    pub parallel_scenes: bool,
    /// A scene's clip is cut to length and its voices mixed in one ffmpeg pass (the patch
    /// `one-pass-cut`); false keeps the earlier two passes, as a build before the patch did.
    pub scene_one_pass: bool,
    /// Share of frames the local vision check rejects on purpose.
    pub vision_fail_rate: f64,
    /// Key for the API (`SLATE_API_KEY`).
    pub api_key: Option<Secret>,
    /// Key for admin operations (`SLATE_ADMIN_KEY`).
    pub admin_key: Option<Secret>,
    /// Shared secret of webhook senders (`SLATE_WEBHOOK_SECRET`).
    pub webhook_secret: Option<Secret>,
    /// MongoDB for the gather and qualified documents (`MONGODB_URI`; may hold a password).
    pub mongodb_uri: Option<Secret>,
    /// Which provider each activity uses, read by the same loader.
    pub providers: ProviderSettings,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("data_dir", &self.data_dir)
            .field("blob_url", &self.blob_url)
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
            .field("providers", &self.providers)
            .finish()
    }
}

/// The concurrency keys Slate's steps take, with the limit each has unless set otherwise: the
/// generation jobs that may run at once at the providers, across every worker (a provider
/// queues what is over its account's limit, so more would only wait there, unseen). A new fal
/// account runs 2 requests at once, raised to 40 as credits are bought.
pub const DEFAULT_LIMITS: &[(&str, u32)] = &[("images", 4), ("video", 2)];

fn parse_limits(s: &str) -> Result<Vec<(String, Option<u32>)>, String> {
    let known = || {
        DEFAULT_LIMITS
            .iter()
            .map(|(k, _)| *k)
            .collect::<Vec<_>>()
            .join(", ")
    };
    s.split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p
                .split_once('=')
                .ok_or_else(|| format!("`{p}` is not key=number (for example images=4)"))?;
            let k = k.trim();
            if !DEFAULT_LIMITS.iter().any(|(d, _)| *d == k) {
                return Err(format!(
                    "`{k}` is not a key Slate's steps take; the keys are {}",
                    known()
                ));
            }
            if v.trim().eq_ignore_ascii_case("off") {
                return Ok((k.to_string(), None));
            }
            let n: u32 = v.trim().parse().map_err(|_| {
                format!("`{v}` in `{p}` is not a whole number (or `off` for no limit)")
            })?;
            if n == 0 {
                return Err(format!(
                    "the limit of `{k}` must be at least 1 (`{k}=off` removes it)"
                ));
            }
            Ok((k.to_string(), Some(n)))
        })
        .collect()
}

/// Say a loader error in the user's terms: the variable to set, what it held, what it needs.
fn explain(e: config::ConfigError) -> String {
    match e {
        config::ConfigError::Type {
            unexpected,
            expected,
            key: Some(key),
            origin,
        } => format!(
            "{} (`{key}` in a file) is {unexpected}, which is not {expected}{}",
            variable_of(&key),
            origin.map(|o| format!(" (from {o})")).unwrap_or_default()
        ),
        config::ConfigError::At {
            error,
            key: Some(key),
            ..
        } => format!("{}: {}", variable_of(&key), explain(*error)),
        other => other.to_string(),
    }
}

/// Read a configuration file on its own, to refuse what must not be in one: a key Slate does
/// not know (a typo would otherwise be ignored in silence) and a secret.
fn check_file(path: &Path) -> Result<(), String> {
    use config::Source;
    let read = config::File::from(path)
        .format(config::FileFormat::Toml)
        .collect()
        .map_err(|e| format!("{} is not a valid Slate configuration: {e}", path.display()))?;
    for key in read.keys() {
        match variables().find(|(v, _)| file_key(v) == *key) {
            None => {
                let known: Vec<String> = variables().map(|(v, _)| file_key(v)).collect();
                return Err(format!(
                    "{} is not a valid Slate configuration: `{key}` is not a setting (the settings are {})",
                    path.display(),
                    known.join(", ")
                ));
            }
            Some((v, true)) => {
                return Err(format!(
                    "{}: `{key}` is a secret; set {v} in the environment, not in a file",
                    path.display()
                ));
            }
            Some(_) => {}
        }
    }
    Ok(())
}

impl Config {
    /// Load: defaults, then `file` (or `<data dir>/slate.toml` if it exists), then the
    /// environment, read through `env` so tests can pass their own. A value left empty counts
    /// as unset.
    pub fn load(
        file: Option<&Path>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Config, String> {
        let from_env: HashMap<String, String> = variables()
            .filter_map(|(v, _)| {
                env(v)
                    .filter(|x| !x.trim().is_empty())
                    .map(|x| (file_key(v), x))
            })
            .collect();
        let file_path = file.map(Path::to_path_buf).or_else(|| {
            let p = from_env
                .get("data_dir")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from(".slate"))
                .join("slate.toml");
            p.exists().then_some(p)
        });
        let mut layers = config::Config::builder();
        if let Some(p) = &file_path {
            check_file(p)?;
            layers =
                layers.add_source(config::File::from(p.as_path()).format(config::FileFormat::Toml));
        }
        let layers = layers
            .add_source(config::Environment::default().source(Some(from_env)))
            .build()
            .map_err(explain)?;
        let s: ServerVars = layers.clone().try_deserialize().map_err(explain)?;
        let providers = ProviderSettings::from_vars(
            layers.try_deserialize::<ProviderVars>().map_err(explain)?,
        )?;

        let data_dir = s.data_dir.unwrap_or_else(|| PathBuf::from(".slate"));
        let database_url = s
            .database_url
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
        let listen: SocketAddr = s.listen.parse().map_err(|_| {
            format!(
                "SLATE_LISTEN `{}` is not an address such as 127.0.0.1:8080",
                s.listen
            )
        })?;
        if s.workers == 0 {
            return Err("SLATE_WORKERS must be at least 1".into());
        }
        if s.lease_secs < 2 {
            return Err("SLATE_LEASE_SECS must be at least 2".into());
        }
        let concurrency =
            parse_limits(&s.concurrency).map_err(|e| format!("SLATE_CONCURRENCY: {e}"))?;
        if !(0.0..=1.0).contains(&s.local_vision_fail_rate) {
            return Err("SLATE_LOCAL_VISION_FAIL_RATE must be between 0 and 1".into());
        }
        Ok(Config {
            data_dir,
            blob_url: s.blob_url.filter(|u| !u.trim().is_empty()),
            database_url,
            listen,
            public_url: providers.public_url.clone(),
            workers: s.workers,
            lease: Duration::from_secs(s.lease_secs),
            body_limit: s.body_limit_bytes,
            concurrency,
            edit_window: Duration::from_secs(s.edit_window_secs),
            parallel_scenes: s.parallel_scenes,
            scene_one_pass: s.scene_one_pass,
            vision_fail_rate: s.local_vision_fail_rate,
            api_key: s.api_key.map(Secret::new),
            admin_key: s.admin_key.map(Secret::new),
            webhook_secret: providers.webhook_secret.clone(),
            mongodb_uri: s.mongodb_uri.map(Secret::new),
            providers,
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
        // A key no step takes would limit nothing: it is refused, naming the keys.
        let e = load(&[("SLATE_CONCURRENCY", "fal=4")]).unwrap_err();
        assert!(e.contains("`fal`") && e.contains("images, video"), "{e}");
        let e = load(&[("SLATE_CONCURRENCY", "video=0")]).unwrap_err();
        assert!(e.contains("video=off"), "{e}");
        let c = load(&[
            ("SLATE_CONCURRENCY", "images=8, video=OFF"),
            ("SLATE_API_KEY", "k"),
        ])
        .unwrap();
        assert_eq!(
            c.concurrency,
            vec![("images".into(), Some(8)), ("video".into(), None)]
        );
        assert!(!format!("{c:?}").contains("\"k\""));
        let c = load(&[("SLATE_LISTEN", "0.0.0.0:80")]).unwrap();
        assert!(c.check_for_serving().unwrap_err().contains("SLATE_API_KEY"));
    }

    #[test]
    fn wrong_types_name_the_variable() {
        let e = load(&[("SLATE_WORKERS", "many")]).unwrap_err();
        assert!(e.contains("SLATE_WORKERS") && e.contains("many"), "{e}");
        let e = load(&[("SLATE_LOCAL_VISION_FAIL_RATE", "half")]).unwrap_err();
        assert!(e.contains("SLATE_LOCAL_VISION_FAIL_RATE"), "{e}");
        let e = load(&[("SLATE_FAL_TIMEOUT_SECS", "-1"), ("FAL_KEY", "k")]).unwrap_err();
        assert!(e.contains("SLATE_FAL_TIMEOUT_SECS"), "{e}");
        // Empty counts as unset, as a shell's `VAR=` means.
        assert_eq!(load(&[("SLATE_WORKERS", "")]).unwrap().workers, 16);
    }

    #[test]
    fn providers_come_from_the_same_loader() {
        let c = load(&[
            ("FAL_KEY", "fal-secret"),
            ("SLATE_FAL_VIDEO_MODEL", "fal-ai/veo3/fast/image-to-video"),
            ("SLATE_PUBLIC_URL", "https://slate.example/"),
            ("SLATE_WEBHOOK_SECRET", "w"),
        ])
        .unwrap();
        let fal = c.providers.fal.as_ref().unwrap();
        assert_eq!(fal.video_model, "fal-ai/veo3/fast/image-to-video");
        // The model's own lengths, from its template.
        assert_eq!(fal.video_durations, vec![4.0, 6.0, 8.0]);
        // A video model Slate has no template for needs its lengths said.
        let e = load(&[
            ("FAL_KEY", "k"),
            ("SLATE_FAL_VIDEO_MODEL", "someone/new-model"),
        ])
        .unwrap_err();
        assert!(e.contains("SLATE_FAL_VIDEO_DURATIONS"), "{e}");
        assert_eq!(c.public_url.as_deref(), Some("https://slate.example"));
        assert_eq!(c.providers.public_url, c.public_url);
        assert!(c.webhook_secret.is_some());
        assert!(!format!("{c:?}").contains("fal-secret"));
        assert!(load(&[]).unwrap().providers.fal.is_none());
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
        let e = Config::load(Some(&p), |_| None).unwrap_err();
        assert!(e.contains("not a valid") && e.contains("`nonsense`"), "{e}");
        std::fs::write(&p, "listen = [1\n").unwrap();
        let e = Config::load(Some(&p), |_| None).unwrap_err();
        assert!(e.contains("not a valid"), "{e}");
        // Provider settings live in the same file, under the same rule.
        std::fs::write(
            &p,
            "fal_video_model = \"m/file\"\nfal_video_durations = \"5\"\nworkers = \"x\"\n",
        )
        .unwrap();
        let e = Config::load(Some(&p), |_| None).unwrap_err();
        assert!(e.contains("SLATE_WORKERS"), "{e}");
        std::fs::write(
            &p,
            "fal_video_model = \"m/file\"\nfal_video_durations = \"5,10\"\n",
        )
        .unwrap();
        let c = Config::load(Some(&p), |k| (k == "FAL_KEY").then(|| "k".into())).unwrap();
        assert_eq!(c.providers.fal.unwrap().video_model, "m/file");
        // Secrets stay out of files.
        std::fs::write(&p, "api_key = \"k\"\n").unwrap();
        let e = Config::load(Some(&p), |_| None).unwrap_err();
        assert!(
            e.contains("SLATE_API_KEY") && e.contains("environment"),
            "{e}"
        );
        assert!(!e.contains("\"k\""), "{e}");
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn the_readme_lists_every_variable() {
        let readme = include_str!("../../README.md");
        let providers = include_str!("../../docs/providers.md");
        for (v, _) in variables() {
            assert!(
                readme.contains(&format!("`{v}`")) || providers.contains(&format!("`{v}`")),
                "{v} is read but documented nowhere"
            );
        }
    }
}
