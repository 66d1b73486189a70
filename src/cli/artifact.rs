//! `rcfops artifact fetch URI --sha256 HEX --dest DIR`: a model artifact into a folder, for a
//! pod's initContainer. `file://` or `http(s)://`; the bytes are hashed as they arrive, written
//! to a temporary file beside the destination and renamed into place only when the digest
//! matches, so a wrong digest or a cut-off download leaves nothing behind.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Result};
use sha2::{Digest, Sha256};

use super::*;

#[derive(clap::Args, Debug)]
pub struct FetchArgs {
    /// `file:///path/sha256-<hex>.rcfm` or `https://store.example/sha256-<hex>.rcfm`.
    pub uri: String,
    /// The artifact's SHA-256 (hex); anything else is refused.
    #[arg(long)]
    pub sha256: String,
    /// The folder to put it in (created if needed), e.g. the emptyDir at /opt/ml/model.
    #[arg(long)]
    pub dest: PathBuf,
}

/// Where the bytes come from.
#[derive(Debug, PartialEq, Eq)]
enum Source {
    File(PathBuf),
    Http(String),
}

fn source(uri: &str) -> Result<Source> {
    if let Some(path) = uri.strip_prefix("file://") {
        if !path.starts_with('/') {
            bail!("{uri:?}: a file URI names an absolute path, e.g. file:///srv/artifacts/sha256-….rcfm");
        }
        return Ok(Source::File(PathBuf::from(path)));
    }
    if uri.starts_with("http://") || uri.starts_with("https://") {
        return Ok(Source::Http(uri.to_string()));
    }
    bail!("{uri:?} is not a file://, http:// or https:// URI")
}

/// The file name in `dest`: the URI's last segment when it is an `.rcfm` name, else
/// `model.rcfm`.
fn file_name(uri: &str) -> String {
    let last = uri
        .split(['?', '#'])
        .next()
        .unwrap_or("")
        .rsplit('/')
        .next()
        .unwrap_or("");
    let ok = last.ends_with(".rcfm")
        && last.len() > 5
        && last
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if ok {
        last.to_string()
    } else {
        "model.rcfm".to_string()
    }
}

/// A temporary file in `dest` that is removed unless kept.
struct Partial {
    path: PathBuf,
    file: Option<std::fs::File>,
}

impl Drop for Partial {
    fn drop(&mut self) {
        if self.file.is_some() {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

pub(super) fn cmd_artifact_fetch(a: FetchArgs) -> Result<i32> {
    let want = a.sha256.to_ascii_lowercase();
    if want.len() != 64 || !want.bytes().all(|b| b.is_ascii_hexdigit()) {
        bail!(
            "--sha256 {:?} is not a SHA-256 in hex (64 characters)",
            a.sha256
        );
    }
    let src = source(&a.uri)?;
    std::fs::create_dir_all(&a.dest)
        .map_err(|e| anyhow!("cannot create {}: {e}", a.dest.display()))?;
    let name = file_name(&a.uri);
    let final_path = a.dest.join(&name);
    let tmp = a
        .dest
        .join(format!(".{name}.partial-{}", std::process::id()));
    let file = std::fs::File::create(&tmp)
        .map_err(|e| anyhow!("cannot write in {}: {e}", a.dest.display()))?;
    let mut partial = Partial {
        path: tmp.clone(),
        file: Some(file),
    };
    let mut hasher = Sha256::new();
    let mut total = 0u64;
    {
        let out = partial.file.as_mut().expect("open");
        let mut sink = |chunk: &[u8]| -> Result<()> {
            hasher.update(chunk);
            total += chunk.len() as u64;
            out.write_all(chunk)
                .map_err(|e| anyhow!("cannot write {}: {e}", tmp.display()))
        };
        match &src {
            Source::File(p) => copy_file(p, &mut sink)?,
            Source::Http(url) => download(url, &mut sink)?,
        }
    }
    let got = format!("{:x}", hasher.finalize());
    if got != want {
        return Err(anyhow::Error::new(Failed(format!(
            "{} has sha256 {got}, not {want} ({total} bytes): nothing was written to {}",
            a.uri,
            a.dest.display()
        ))));
    }
    let file = partial.file.take().expect("open");
    file.sync_all()
        .map_err(|e| anyhow!("cannot sync {}: {e}", tmp.display()))?;
    drop(file);
    if let Err(e) = std::fs::rename(&tmp, &final_path) {
        let _ = std::fs::remove_file(&tmp);
        bail!(
            "cannot move the artifact into {}: {e}",
            final_path.display()
        );
    }
    if let Ok(d) = std::fs::File::open(&a.dest) {
        let _ = d.sync_all();
    }
    println!("{} ({total} bytes, sha256 {got})", final_path.display());
    Ok(0)
}

fn copy_file(p: &Path, sink: &mut dyn FnMut(&[u8]) -> Result<()>) -> Result<()> {
    use std::io::Read;
    let mut f =
        std::fs::File::open(p).map_err(|e| Failed(format!("cannot read {}: {e}", p.display())))?;
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = f
            .read(&mut buf)
            .map_err(|e| Failed(format!("cannot read {}: {e}", p.display())))?;
        if n == 0 {
            return Ok(());
        }
        sink(&buf[..n])?;
    }
}

fn download(url: &str, sink: &mut dyn FnMut(&[u8]) -> Result<()>) -> Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let client = reqwest::Client::builder()
            .connect_timeout(std::time::Duration::from_secs(30))
            .build()
            .map_err(|e| anyhow!("cannot build an HTTP client: {e}"))?;
        let mut resp = client
            .get(url)
            .send()
            .await
            .map_err(|e| Failed(format!("cannot fetch {url}: {e}")))?;
        if !resp.status().is_success() {
            return Err(anyhow::Error::new(Failed(format!(
                "{url} answered {}",
                resp.status()
            ))));
        }
        let expected = resp.content_length();
        let mut got = 0u64;
        loop {
            match resp.chunk().await {
                Ok(Some(c)) => {
                    got += c.len() as u64;
                    sink(&c)?;
                }
                Ok(None) => break,
                Err(e) => {
                    return Err(anyhow::Error::new(Failed(format!(
                        "the download of {url} broke off after {got} bytes: {e}"
                    ))))
                }
            }
        }
        if let Some(n) = expected {
            if got != n {
                return Err(anyhow::Error::new(Failed(format!(
                    "the download of {url} ended after {got} of {n} bytes"
                ))));
            }
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris_and_names() {
        assert_eq!(
            source("file:///srv/a.rcfm").unwrap(),
            Source::File("/srv/a.rcfm".into())
        );
        assert!(source("file://relative/a").is_err());
        assert!(source("s3://bucket/a").is_err());
        assert_eq!(
            source("https://h/x").unwrap(),
            Source::Http("https://h/x".into())
        );
        assert_eq!(
            file_name("https://h/a/sha256-ab.rcfm?x=1"),
            "sha256-ab.rcfm"
        );
        assert_eq!(file_name("https://h/a/blob"), "model.rcfm");
        assert_eq!(file_name("file:///a/../.rcfm"), "model.rcfm");
    }
}
