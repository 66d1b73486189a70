//! Request authentication for the stage endpoints: AWS Signature Version 4, as SageMaker's
//! `InvokeEndpoint` checks it.
//!
//! - `credentials`: the `~/.aws/credentials` INI format (access key id → secret), with the
//!   secrets redacted from every `Debug` and message.
//! - `sigv4`: the canonical request, the string to sign, the signing key; [`sigv4::Verifier`]
//!   checks a request by recomputing its signature, [`sigv4::Signer`] signs the requests rcfops
//!   itself sends (`rcfops score`, the staging tests).
//!
//! Pure computation: no I/O (the caller reads the credentials file and the clock), no logging.

pub mod credentials;
pub mod sigv4;

pub use credentials::{Credentials, Secret};
pub use sigv4::{Outgoing, Refusal, RefusalCode, Scope, Signer, Verifier};
