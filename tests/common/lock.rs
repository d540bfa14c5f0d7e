//! A lock between test processes: a directory that only one of them can
//! create, holding its owner's pid. Test runners that use one process per
//! test (cargo-nextest), or two checkouts testing at once, wait for each other.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Held until dropped.
pub struct DirLock {
    dir: PathBuf,
}

impl DirLock {
    /// Takes the lock at `dir`, waiting at most `wait`. A lock whose owner
    /// is gone is stale and taken over.
    pub fn acquire(dir: &Path, wait: Duration) -> Self {
        if let Some(parent) = dir.parent() {
            std::fs::create_dir_all(parent)
                .unwrap_or_else(|e| panic!("cannot create {}: {e}", parent.display()));
        }
        let deadline = Instant::now() + wait;
        loop {
            match std::fs::create_dir(dir) {
                Ok(()) => {
                    let _ = std::fs::write(dir.join("pid"), std::process::id().to_string());
                    return DirLock {
                        dir: dir.to_path_buf(),
                    };
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let owner = std::fs::read_to_string(dir.join("pid")).unwrap_or_default();
                    let alive = owner
                        .trim()
                        .parse::<u32>()
                        .map(|p| Path::new(&format!("/proc/{p}")).exists())
                        // No pid yet: its owner is between create_dir and write.
                        .unwrap_or(true);
                    if !alive {
                        let _ = std::fs::remove_dir_all(dir);
                        continue;
                    }
                    assert!(
                        Instant::now() < deadline,
                        "waited {wait:?} for {} (held by pid {}; remove it if that process is not a test)",
                        dir.display(),
                        owner.trim()
                    );
                    std::thread::sleep(Duration::from_millis(500));
                }
                Err(e) => panic!("cannot create {}: {e}", dir.display()),
            }
        }
    }
}

impl Drop for DirLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
