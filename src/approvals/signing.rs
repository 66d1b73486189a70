//! Signed approvals: SSH signatures on annotated tags, checked against an allowed-signers file.
//!
//! Owns parsing git's `gpg.ssh.allowedSignersFile` format (`principals [options] keytype key
//! [comment]`, `#` comments) and verifying the SSHSIG block that `git tag -s` with
//! `gpg.format=ssh` appends to a tag object: the signature must be in the `git` namespace, by a
//! key listed for the tagger's e-mail, over the tag object up to the signature. Everything is
//! verified in Rust (ssh-key), never by running `ssh-keygen` or `git`.

use std::path::Path;

use ssh_key::{PublicKey, SshSig};

const BEGIN: &[u8] = b"-----BEGIN SSH SIGNATURE-----";

#[derive(Debug, Clone)]
pub struct AllowedSigners {
    entries: Vec<(Vec<String>, PublicKey)>,
}

impl AllowedSigners {
    pub fn load(path: &Path) -> Result<AllowedSigners, String> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            format!(
                "cannot read the allowed-signers file {}: {e}",
                path.display()
            )
        })?;
        Self::parse(&text, &path.display().to_string())
    }

    pub fn parse(text: &str, name: &str) -> Result<AllowedSigners, String> {
        let mut entries = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let mut parts = line.split_whitespace();
            let principals: Vec<String> = parts
                .next()
                .unwrap_or("")
                .split(',')
                .map(|p| p.trim().trim_matches('"').to_ascii_lowercase())
                .collect();
            let rest: Vec<&str> = parts.collect();
            // Options (e.g. namespaces="git") come before the key type when present.
            let start = rest
                .iter()
                .position(|t| {
                    t.starts_with("ssh-") || t.starts_with("ecdsa-") || t.starts_with("sk-")
                })
                .ok_or_else(|| format!("{name}:{}: no public key on the line", i + 1))?;
            let options = rest[..start].join(" ");
            if !options.is_empty() && options.contains("namespaces=") && !options.contains("git") {
                continue; // a key not allowed for git signatures
            }
            let key_text = rest[start..].join(" ");
            let key = PublicKey::from_openssh(&key_text)
                .map_err(|e| format!("{name}:{}: invalid public key: {e}", i + 1))?;
            entries.push((principals, key));
        }
        Ok(AllowedSigners { entries })
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Verifies the SSH signature inside a raw tag object for `email`.
    pub fn verify_tag(&self, raw_tag: &[u8], email: &str) -> Result<(), String> {
        let at = find(raw_tag, BEGIN).ok_or("it is not signed")?;
        let (payload, pem) = raw_tag.split_at(at);
        let sig =
            SshSig::from_pem(pem).map_err(|e| format!("its signature cannot be read: {e}"))?;
        if sig.namespace() != "git" {
            return Err(format!(
                "its signature is for namespace {:?}, not \"git\"",
                sig.namespace()
            ));
        }
        let email = email.trim().to_ascii_lowercase();
        let candidates: Vec<&PublicKey> = self
            .entries
            .iter()
            .filter(|(p, _)| p.iter().any(|x| x == &email || x == "*"))
            .map(|(_, k)| k)
            .collect();
        if candidates.is_empty() {
            return Err(format!("{email} has no key in the allowed-signers file"));
        }
        let key = candidates
            .into_iter()
            .find(|k| k.key_data() == sig.public_key())
            .ok_or_else(|| format!("it is signed by a key that is not listed for {email} in the allowed-signers file"))?;
        key.verify("git", payload, &sig).map_err(|_| {
            "its signature does not match the tag's content (forged or altered)".to_string()
        })
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}
