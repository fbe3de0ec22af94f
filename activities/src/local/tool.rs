//! Running the media tools (ffmpeg, ffprobe, espeak-ng) and the frame rate every clip has.

use std::path::Path;

use tokio::process::Command;

use crate::error::{ActivityError, ErrorKind, Result};

/// Frames per second of every clip.
pub const FPS: u32 = 24;

/// Run a tool; on failure the error carries the end of its stderr.
pub async fn run(tool: &str, args: &[String]) -> Result<String> {
    let out = Command::new(tool)
        .args(args)
        .kill_on_drop(true)
        .output()
        .await
        .map_err(|e| {
            let hint = if e.kind() == std::io::ErrorKind::NotFound {
                format!(
                    "{tool} is not installed (run ./scripts/demo or apt-get install {})",
                    if tool == "ffprobe" { "ffmpeg" } else { tool }
                )
            } else {
                format!("cannot start {tool}: {e}")
            };
            ActivityError::new("local", ErrorKind::Tool, hint).retryable(false)
        })?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let tail: Vec<&str> = err.lines().rev().take(6).collect();
        return Err(ActivityError::tool(format!(
            "{tool} failed ({}): {}",
            out.status,
            tail.into_iter().rev().collect::<Vec<_>>().join(" | ")
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

pub(crate) fn a<I: IntoIterator<Item = S>, S: Into<String>>(items: I) -> Vec<String> {
    items.into_iter().map(Into::into).collect()
}

pub(crate) fn p(path: &Path) -> String {
    path.to_string_lossy().into_owned()
}
