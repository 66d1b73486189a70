//! TLS for a stage endpoint (rustls): a PEM certificate chain and key, re-read when either file
//! changes, so a renewed certificate is served without a restart.
//!
//! Each handshake checks the two files' modification times and sizes (two `stat`s); when they
//! changed, the pair is loaded again. A pair that fails to load (a half-written renewal, a key
//! that does not match) keeps the previous one in service and is logged once per change.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// Where a stage's certificate chain and key are (PEM files).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl TlsFiles {
    pub fn new(cert: &Path, key: &Path) -> TlsFiles {
        TlsFiles {
            cert: cert.to_path_buf(),
            key: key.to_path_buf(),
        }
    }
}

/// Reads the chain and key and checks that they belong together; errors say which file and
/// what to do.
pub fn load(files: &TlsFiles) -> Result<CertifiedKey, String> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&files.cert)
        .map_err(|e| format!("cannot read the certificate {}: {e}", files.cert.display()))?
        .collect::<Result<_, _>>()
        .map_err(|e| {
            format!(
                "{} is not a PEM certificate chain: {e}",
                files.cert.display()
            )
        })?;
    if chain.is_empty() {
        return Err(format!(
            "{} holds no certificate (expected -----BEGIN CERTIFICATE-----)",
            files.cert.display()
        ));
    }
    let key = PrivateKeyDer::from_pem_file(&files.key).map_err(|e| {
        format!(
            "cannot read a PEM private key from {}: {e}",
            files.key.display()
        )
    })?;
    let provider = rustls::crypto::ring::default_provider();
    let signing = provider
        .key_provider
        .load_private_key(key)
        .map_err(|e| format!("{} is not a usable private key: {e}", files.key.display()))?;
    let ck = CertifiedKey::new(chain, signing);
    ck.keys_match().map_err(|e| {
        format!(
            "the key {} does not match the certificate {}: {e}",
            files.key.display(),
            files.cert.display()
        )
    })?;
    Ok(ck)
}

type Stamp = Option<(SystemTime, u64)>;

fn stamp(p: &Path) -> Stamp {
    let m = std::fs::metadata(p).ok()?;
    Some((m.modified().ok()?, m.len()))
}

/// A certificate resolver that follows its files.
#[derive(Debug)]
pub struct Reloading {
    files: TlsFiles,
    state: Mutex<(Stamp, Stamp, Arc<CertifiedKey>)>,
}

impl Reloading {
    pub fn new(files: TlsFiles) -> Result<Reloading, String> {
        let (c, k) = (stamp(&files.cert), stamp(&files.key));
        let ck = Arc::new(load(&files)?);
        Ok(Reloading {
            files,
            state: Mutex::new((c, k, ck)),
        })
    }

    fn current(&self) -> Arc<CertifiedKey> {
        let (c, k) = (stamp(&self.files.cert), stamp(&self.files.key));
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if st.0 != c || st.1 != k {
            match load(&self.files) {
                Ok(ck) => {
                    tracing::info!("TLS certificate {} reloaded", self.files.cert.display());
                    st.2 = Arc::new(ck);
                }
                Err(e) => {
                    tracing::warn!("TLS certificate not reloaded, serving the previous one: {e}")
                }
            }
            st.0 = c;
            st.1 = k;
        }
        st.2.clone()
    }
}

impl ResolvesServerCert for Reloading {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current())
    }
}

/// The rustls server configuration for `files` (HTTP/1.1 by ALPN).
pub fn server_config(files: &TlsFiles) -> Result<Arc<rustls::ServerConfig>, String> {
    let resolver = Arc::new(Reloading::new(files.clone())?);
    let mut cfg = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| format!("TLS setup failed: {e}"))?
    .with_no_client_auth()
    .with_cert_resolver(resolver);
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
}

/// The certificates of `files.cert`, DER, for rcfops's own clients to trust (the chain's CA
/// when it is included, or the certificate itself when it is self-signed).
pub fn chain_der(files: &TlsFiles) -> Vec<Vec<u8>> {
    CertificateDer::pem_file_iter(&files.cert)
        .map(|it| it.filter_map(Result::ok).map(|c| c.to_vec()).collect())
        .unwrap_or_default()
}
