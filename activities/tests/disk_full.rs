//! The disk holding the blobs fills up: a write that does not fit is a clear, retryable error,
//! and no partial blob is left behind to be served or referenced. The blob directory is a real
//! 1 MiB tmpfs (the test mounts one: it needs root, as `./scripts/test` has on Debian CI).

use std::path::{Path, PathBuf};
use std::process::Command;

use slate_activities::Blobs;

struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(size: &str) -> Tmpfs {
        let dir =
            std::env::temp_dir().join(format!("slate-full-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&dir)
            .output()
            .expect("run mount");
        assert!(
            out.status.success(),
            "mounting a small tmpfs failed ({}): this test needs root (or CAP_SYS_ADMIN) to make a full disk",
            String::from_utf8_lossy(&out.stderr).trim()
        );
        Tmpfs(dir)
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = vec![];
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(files(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[tokio::test]
async fn a_full_disk_is_a_clear_retryable_error_and_leaves_no_partial_blob() {
    let fs = Tmpfs::mount("1m");
    let blobs = Blobs::local(fs.0.join("blobs"), None).unwrap();
    // Fits.
    let small = blobs
        .put("scenes/s1/frame.png", vec![7u8; 100_000])
        .await
        .unwrap();
    // Does not fit.
    let err = blobs
        .put("scenes/s2/clip.mp4", vec![9u8; 3_000_000])
        .await
        .unwrap_err();
    assert!(err.retryable, "{err:?}");
    assert!(
        err.message.contains("blob store is full"),
        "{}",
        err.message
    );
    assert!(err.message.contains("SLATE_DATA_DIR"), "{}", err.message);
    // Nothing half-written under the key, or anywhere else.
    let r = slate_activities::BlobRef::new("scenes/s2/clip.mp4").unwrap();
    assert!(!blobs.exists(&r).await.unwrap(), "a partial blob exists");
    let left: Vec<PathBuf> = files(&fs.0.join("blobs"));
    assert_eq!(left.len(), 1, "only the blob that fit is there: {left:?}");
    assert_eq!(blobs.get(&small).await.unwrap().len(), 100_000);
    // Once there is room (the other blob gone), the same write succeeds.
    std::fs::remove_file(&left[0]).unwrap();
    let again = blobs.put("scenes/s2/clip.mp4", vec![9u8; 900_000]).await;
    assert!(again.is_ok(), "{again:?}");
}
