//! Content-addressed model artifacts in the state folder.
//!
//! Owns the artifact files: `artifacts/sha256-<hex>.rcfm`, written atomically (temporary file,
//! fsync, rename, fsync of the folder) and verified against their digest on every read, so a
//! file changed on disk is never served. It knows nothing of versions or stages.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

pub fn sha256_hex(bytes: &[u8]) -> String {
    let d = Sha256::digest(bytes);
    let mut s = String::with_capacity(64);
    for b in d {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

/// Writes `bytes` to `path` atomically: a temporary file beside it (named `.tmp-…`, which
/// [`ArtifactStore::clean_temporaries`] removes after a crash), fsync, rename, fsync of the
/// folder. A reader sees the old content or the new, never a part.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let tmp = dir.join(format!(".tmp-{name}-{}", std::process::id()));
    {
        let mut f = fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    fs::rename(&tmp, path)?;
    if let Ok(d) = fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

#[derive(Debug, Clone)]
pub struct ArtifactStore {
    dir: PathBuf,
}

impl ArtifactStore {
    pub fn open(dir: &Path) -> std::io::Result<ArtifactStore> {
        fs::create_dir_all(dir)?;
        Ok(ArtifactStore {
            dir: dir.to_path_buf(),
        })
    }

    pub fn path_of(&self, digest: &str) -> PathBuf {
        self.dir.join(format!("sha256-{digest}.rcfm"))
    }

    /// Stores `bytes`; returns the digest. Idempotent: an existing, intact file is kept.
    pub fn put(&self, bytes: &[u8]) -> std::io::Result<String> {
        let digest = sha256_hex(bytes);
        let path = self.path_of(&digest);
        if let Ok(existing) = fs::read(&path) {
            if sha256_hex(&existing) == digest {
                return Ok(digest);
            }
        }
        write_atomic(&path, bytes)?;
        Ok(digest)
    }

    /// Reads the artifact and checks its digest.
    pub fn get(&self, digest: &str) -> Result<Vec<u8>, String> {
        let path = self.path_of(digest);
        let bytes = fs::read(&path)
            .map_err(|e| format!("artifact {} cannot be read: {e}", path.display()))?;
        let actual = sha256_hex(&bytes);
        if actual != digest {
            return Err(format!(
                "artifact {} has sha256 {actual}, but the registry recorded {digest}: the file was changed on disk; refusing to deploy it",
                path.display()
            ));
        }
        Ok(bytes)
    }

    /// Removes leftover temporary files from an interrupted write.
    pub fn clean_temporaries(&self) {
        if let Ok(rd) = fs::read_dir(&self.dir) {
            for e in rd.flatten() {
                if e.file_name().to_string_lossy().starts_with(".tmp-") {
                    let _ = fs::remove_file(e.path());
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_tamper_detection() {
        let d = tempfile::tempdir().unwrap();
        let s = ArtifactStore::open(d.path()).unwrap();
        let digest = s.put(b"model").unwrap();
        assert_eq!(s.get(&digest).unwrap(), b"model");
        assert_eq!(s.put(b"model").unwrap(), digest);
        fs::write(s.path_of(&digest), b"evil").unwrap();
        assert!(s.get(&digest).unwrap_err().contains("changed on disk"));
        s.put(b"model").unwrap();
        assert_eq!(s.get(&digest).unwrap(), b"model");
    }
}
