//! Standard Webhooks signatures: `v1,<base64 HMAC-SHA256(key, "{id}.{timestamp}.{body}")>`
//! with the key from a `whsec_<base64>` secret (pure).

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// A webhook signing key. Its `Debug` form never shows the key.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Vec<u8>);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(redacted)")
    }
}

impl Secret {
    /// Reads the text of a secret file: `whsec_` followed by base64 (surrounding whitespace
    /// ignored). The error says what is wrong without echoing the secret.
    pub fn parse(text: &str) -> Result<Secret, String> {
        let t = text.trim();
        let Some(b64) = t.strip_prefix("whsec_") else {
            return Err("does not start with `whsec_` (a Standard Webhooks secret is `whsec_` followed by base64)".into());
        };
        let key = STANDARD
            .decode(b64)
            .map_err(|e| format!("the part after `whsec_` is not base64 ({e})"))?;
        if key.len() < 16 {
            return Err(format!(
                "the key is {} bytes; use at least 16 (e.g. `echo whsec_$(head -c 32 /dev/urandom | base64)`)",
                key.len()
            ));
        }
        Ok(Secret(key))
    }

    /// The `webhook-signature` header value for one attempt.
    pub fn sign(&self, msg_id: &str, timestamp: i64, body: &[u8]) -> String {
        let mut mac =
            Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes keys of any length");
        mac.update(msg_id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_specification_example_signs_as_published() {
        // The example of the Standard Webhooks specification and its reference libraries.
        let s = Secret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        assert_eq!(
            s.sign(
                "msg_p5jXN8AQM9LWM0D4loKWxJek",
                1614265330,
                br#"{"test": 2432232314}"#
            ),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    #[test]
    fn every_signed_part_changes_the_signature() {
        let s = Secret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\n").unwrap();
        let base = s.sign("msg_1", 10, b"{}");
        assert_ne!(base, s.sign("msg_2", 10, b"{}"));
        assert_ne!(base, s.sign("msg_1", 11, b"{}"));
        assert_ne!(base, s.sign("msg_1", 10, b"{ }"));
    }

    #[test]
    fn bad_secrets_are_named_without_being_shown() {
        for (text, want) in [
            (
                "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
                "does not start with `whsec_`",
            ),
            ("whsec_not base64!", "not base64"),
            ("whsec_c2hvcnQ=", "5 bytes"),
            ("", "does not start"),
        ] {
            let e = Secret::parse(text).unwrap_err();
            assert!(e.contains(want), "{text:?}: {e}");
            assert!(text.len() < 8 || !e.contains(&text[6..]), "{e}");
        }
        assert_eq!(
            format!(
                "{:?}",
                Secret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap()
            ),
            "Secret(redacted)"
        );
    }
}
