//! The AWS shared-credentials file (`~/.aws/credentials`): INI sections, one per profile, each
//! with `aws_access_key_id` and `aws_secret_access_key`.

use std::collections::BTreeMap;

/// A secret access key. Its `Debug` and `Display` never show it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Secret {
        Secret(s.into())
    }

    /// The secret itself, for key derivation only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// One profile's key pair.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyPair {
    pub profile: String,
    pub access_key_id: String,
    pub secret: Secret,
}

/// The keys a stage accepts, by access key id; the first profile in the file signs the
/// requests rcfops itself sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    keys: BTreeMap<String, KeyPair>,
    first: String,
}

impl Credentials {
    /// Parses the file's text; errors name the line and what to write instead (never a
    /// secret).
    pub fn parse(text: &str) -> Result<Credentials, String> {
        let mut pairs: Vec<KeyPair> = Vec::new();
        let mut profile: Option<(String, usize)> = None;
        let mut id: Option<String> = None;
        let mut secret: Option<Secret> = None;
        let mut close = |profile: &Option<(String, usize)>,
                         id: &mut Option<String>,
                         secret: &mut Option<Secret>|
         -> Result<(), String> {
            let Some((name, line)) = profile else {
                return Ok(());
            };
            match (id.take(), secret.take()) {
                (Some(access_key_id), Some(secret)) => {
                    pairs.push(KeyPair {
                        profile: name.clone(),
                        access_key_id,
                        secret,
                    });
                    Ok(())
                }
                (None, None) => Ok(()),
                (None, Some(_)) => Err(format!(
                    "line {line}: profile [{name}] has aws_secret_access_key but no \
                     aws_access_key_id"
                )),
                (Some(_), None) => Err(format!(
                    "line {line}: profile [{name}] has aws_access_key_id but no \
                     aws_secret_access_key"
                )),
            }
        };
        for (i, raw) in text.lines().enumerate() {
            let n = i + 1;
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
                continue;
            }
            if let Some(rest) = line.strip_prefix('[') {
                let Some(name) = rest.strip_suffix(']') else {
                    return Err(format!(
                        "line {n}: a section header is `[profile-name]`; this one has no closing ]"
                    ));
                };
                close(&profile, &mut id, &mut secret)?;
                let name = name.trim();
                let name = name.strip_prefix("profile ").unwrap_or(name).trim();
                if name.is_empty() {
                    return Err(format!("line {n}: the profile name is empty"));
                }
                profile = Some((name.to_string(), n));
                continue;
            }
            let Some((k, v)) = line.split_once('=') else {
                return Err(format!(
                    "line {n}: expected `key = value` (e.g. aws_access_key_id = AKIA...)"
                ));
            };
            if profile.is_none() {
                return Err(format!(
                    "line {n}: a key outside any profile; start with a `[default]` section"
                ));
            }
            let (k, v) = (k.trim().to_ascii_lowercase(), v.trim());
            match k.as_str() {
                "aws_access_key_id" => {
                    if v.is_empty() || !v.bytes().all(|b| b.is_ascii_alphanumeric()) {
                        return Err(format!(
                            "line {n}: aws_access_key_id must be letters and digits (e.g. \
                             AKIAIOSFODNN7EXAMPLE)"
                        ));
                    }
                    id = Some(v.to_string());
                }
                "aws_secret_access_key" => {
                    if v.is_empty() {
                        return Err(format!("line {n}: aws_secret_access_key is empty"));
                    }
                    secret = Some(Secret::new(v));
                }
                // Other keys of the format (region, output, ...) are allowed and ignored.
                _ => {}
            }
        }
        close(&profile, &mut id, &mut secret)?;
        let Some(first) = pairs.first().map(|p| p.access_key_id.clone()) else {
            return Err(
                "no profile with aws_access_key_id and aws_secret_access_key: add e.g.\n  \
                 [default]\n  aws_access_key_id = AKIA...\n  aws_secret_access_key = ..."
                    .into(),
            );
        };
        let mut keys = BTreeMap::new();
        for p in pairs {
            if let Some(old) = keys.insert(p.access_key_id.clone(), p) {
                return Err(format!(
                    "access key id {} appears twice (profile [{}] and another): each key id \
                     has one secret",
                    old.access_key_id, old.profile
                ));
            }
        }
        Ok(Credentials { keys, first })
    }

    pub fn get(&self, access_key_id: &str) -> Option<&KeyPair> {
        self.keys.get(access_key_id)
    }

    /// The key that signs rcfops's own requests: the file's first profile.
    pub fn first(&self) -> &KeyPair {
        &self.keys[&self.first]
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profiles_parse_and_secrets_stay_hidden() {
        let c = Credentials::parse(
            "# team keys\n[default]\naws_access_key_id = AKIDEXAMPLE\n\
             aws_secret_access_key = wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY\nregion = eu-west-1\n\
             \n[profile ops]\nAWS_ACCESS_KEY_ID=AKIDOPS\naws_secret_access_key=s3cr3t\n",
        )
        .unwrap();
        assert_eq!(c.len(), 2);
        assert_eq!(c.first().access_key_id, "AKIDEXAMPLE");
        assert_eq!(c.get("AKIDOPS").unwrap().profile, "ops");
        assert_eq!(c.get("AKIDOPS").unwrap().secret.expose(), "s3cr3t");
        let shown = format!("{c:?}");
        assert!(
            !shown.contains("s3cr3t") && !shown.contains("wJalr"),
            "{shown}"
        );
    }

    #[test]
    fn bad_files_say_which_line_and_never_echo_a_secret() {
        for (text, want) in [
            ("", "no profile"),
            ("aws_access_key_id = A\n", "outside any profile"),
            ("[default\n", "closing ]"),
            (
                "[a]\naws_secret_access_key = TOPSECRET\n",
                "no aws_access_key_id",
            ),
            ("[a]\naws_access_key_id = AK\n", "no aws_secret_access_key"),
            ("[a]\naws_access_key_id = AK-1\n", "letters and digits"),
            ("[a]\njunk\n", "key = value"),
            (
                "[a]\naws_access_key_id=K\naws_secret_access_key=x\n[b]\naws_access_key_id=K\naws_secret_access_key=y\n",
                "appears twice",
            ),
        ] {
            let e = Credentials::parse(text).unwrap_err();
            assert!(e.contains(want), "{text:?}: {e}");
            assert!(!e.contains("TOPSECRET"));
        }
    }
}
