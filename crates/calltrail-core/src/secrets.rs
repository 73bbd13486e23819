//! Provider credentials encrypted at rest: [`SecretsKey`] (`CALLTRAIL_SECRETS_KEY`) seals a
//! tenant's webhook signing secret or provider API key with XChaCha20-Poly1305, bound to its
//! tenant, provider and [`SecretKind`], and opens it again. The one place calltrail encrypts:
//! `admin set-provider-secret`, the webhook intake and reconciliation's API keys all use it.
//!
//! The associated data binds each ciphertext to its row, so a ciphertext copied onto another
//! tenant's, provider's or kind's row does not open. Nonces are 24 random bytes from the
//! operating system (the one source of non-determinism in this crate): at that length random
//! nonces never repeat in practice, however many secrets one key seals.

use base64::Engine;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};

use crate::providers::{Provider, ProviderSecret};

/// The environment variable holding the key.
pub const SECRETS_KEY_VAR: &str = "CALLTRAIL_SECRETS_KEY";

/// Length of the key in bytes (before base64).
pub const KEY_BYTES: usize = 32;

/// Length of a nonce in bytes.
pub const NONCE_BYTES: usize = 24;

/// Versions the associated data, so a later scheme can tell its ciphertexts from these.
const AAD_LABEL: &str = "calltrail provider credential v1";

/// Which of a tenant's provider credentials (`provider_secrets.kind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SecretKind {
    /// Checks the provider's webhook signatures (docs/CONTRACT.md §5).
    WebhookSigning,
    /// Authenticates reconciliation's calls to the provider's API (docs/CONTRACT.md §6).
    ApiKey,
}

impl SecretKind {
    /// The value of `provider_secrets.kind`.
    pub fn as_str(self) -> &'static str {
        match self {
            SecretKind::WebhookSigning => "webhook_signing",
            SecretKind::ApiKey => "api_key",
        }
    }
}

/// The row a ciphertext belongs to: its tenant, provider and kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SecretBinding {
    /// The tenant (user id), as its 16 bytes.
    pub tenant: [u8; 16],
    /// The provider.
    pub provider: Provider,
    /// The kind of credential.
    pub kind: SecretKind,
}

impl SecretBinding {
    /// The associated data: the label, the tenant, the provider and the kind, each
    /// NUL-terminated (names never contain NUL, so no two bindings give the same bytes).
    fn associated_data(&self) -> Vec<u8> {
        let mut aad = Vec::with_capacity(AAD_LABEL.len() + 48);
        for part in [AAD_LABEL.as_bytes(), &self.tenant] {
            aad.extend_from_slice(part);
            aad.push(0);
        }
        for part in [self.provider.as_str(), self.kind.as_str()] {
            aad.extend_from_slice(part.as_bytes());
            aad.push(0);
        }
        aad
    }
}

/// A sealed credential: what `provider_secrets` stores.
#[derive(Clone, PartialEq, Eq)]
pub struct Sealed {
    /// The 24-byte nonce.
    pub nonce: Vec<u8>,
    /// The ciphertext followed by its 16-byte tag.
    pub ciphertext: Vec<u8>,
}

impl std::fmt::Debug for Sealed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Sealed({} bytes)", self.ciphertext.len())
    }
}

/// Why `CALLTRAIL_SECRETS_KEY` cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretsKeyError {
    /// The variable is unset or empty where a key is needed.
    #[error("{SECRETS_KEY_VAR} is not set: provider secrets are encrypted with it (32 random bytes, base64; e.g. `openssl rand -base64 32`)")]
    Missing,
    /// The value is not base64.
    #[error("{SECRETS_KEY_VAR} is not base64 (expected 32 random bytes, base64-encoded; e.g. `openssl rand -base64 32`)")]
    NotBase64,
    /// The value decodes to the wrong number of bytes.
    #[error("{SECRETS_KEY_VAR} decodes to {0} bytes, expected {KEY_BYTES} (e.g. `openssl rand -base64 32`)")]
    WrongLength(usize),
}

/// Why a credential could not be sealed or opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    /// The operating system gave no random bytes for a nonce.
    #[error("the operating system's random number generator failed: {0}")]
    Random(String),
    /// Encryption failed (the plaintext is beyond the cipher's limit).
    #[error("the credential could not be encrypted")]
    Encrypt,
    /// The stored nonce is not 24 bytes.
    #[error("the stored nonce is {0} bytes, expected {NONCE_BYTES}")]
    BadNonce(usize),
    /// The ciphertext does not open under this key and binding: another key (was
    /// `CALLTRAIL_SECRETS_KEY` changed?), another row's ciphertext, or altered bytes.
    #[error("the stored credential does not decrypt with {SECRETS_KEY_VAR}: the key changed since it was stored, or the row was altered")]
    Open,
}

/// The key provider credentials are encrypted with. `Debug` never shows it.
#[derive(Clone)]
pub struct SecretsKey {
    cipher: XChaCha20Poly1305,
}

impl std::fmt::Debug for SecretsKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretsKey(..)")
    }
}

impl SecretsKey {
    /// Reads the key from the value of `CALLTRAIL_SECRETS_KEY`: 32 bytes in standard base64
    /// (with or without padding; surrounding whitespace ignored).
    pub fn from_base64(value: &str) -> Result<Self, SecretsKeyError> {
        let value = value.trim();
        if value.is_empty() {
            return Err(SecretsKeyError::Missing);
        }
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(value)
            .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(value))
            .map_err(|_| SecretsKeyError::NotBase64)?;
        let key: [u8; KEY_BYTES] = bytes
            .as_slice()
            .try_into()
            .map_err(|_| SecretsKeyError::WrongLength(bytes.len()))?;
        Ok(Self {
            cipher: XChaCha20Poly1305::new(&key.into()),
        })
    }

    /// The key from an optional variable value: `Ok(None)` when unset or empty, an error when
    /// set to something that is not a key.
    pub fn from_env_value(value: Option<&str>) -> Result<Option<Self>, SecretsKeyError> {
        match value.map(str::trim).filter(|v| !v.is_empty()) {
            None => Ok(None),
            Some(value) => Self::from_base64(value).map(Some),
        }
    }

    /// Encrypts a credential for its row, under a fresh random nonce.
    pub fn seal(&self, binding: &SecretBinding, secret: &[u8]) -> Result<Sealed, SealError> {
        let mut nonce = [0u8; NONCE_BYTES];
        getrandom::fill(&mut nonce).map_err(|err| SealError::Random(err.to_string()))?;
        self.seal_with_nonce(binding, secret, nonce)
    }

    fn seal_with_nonce(
        &self,
        binding: &SecretBinding,
        secret: &[u8],
        nonce: [u8; NONCE_BYTES],
    ) -> Result<Sealed, SealError> {
        let aad = binding.associated_data();
        let ciphertext = self
            .cipher
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: secret,
                    aad: &aad,
                },
            )
            .map_err(|_| SealError::Encrypt)?;
        Ok(Sealed {
            nonce: nonce.to_vec(),
            ciphertext,
        })
    }

    /// Decrypts a stored credential of this row.
    pub fn open(
        &self,
        binding: &SecretBinding,
        nonce: &[u8],
        ciphertext: &[u8],
    ) -> Result<ProviderSecret, SealError> {
        if nonce.len() != NONCE_BYTES {
            return Err(SealError::BadNonce(nonce.len()));
        }
        let aad = binding.associated_data();
        self.cipher
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad: &aad,
                },
            )
            .map(ProviderSecret::new)
            .map_err(|_| SealError::Open)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="; // bytes 0..32

    fn key() -> SecretsKey {
        SecretsKey::from_base64(KEY).unwrap()
    }

    fn binding(tenant: u8, provider: Provider, kind: SecretKind) -> SecretBinding {
        SecretBinding {
            tenant: [tenant; 16],
            provider,
            kind,
        }
    }

    #[test]
    fn a_sealed_secret_opens_only_for_its_own_row_and_key() {
        let row = binding(1, Provider::Vapi, SecretKind::WebhookSigning);
        let sealed = key().seal(&row, b"hunter2").unwrap();
        assert_eq!(sealed.nonce.len(), NONCE_BYTES);
        assert_eq!(sealed.ciphertext.len(), b"hunter2".len() + 16);
        assert!(!sealed.ciphertext.windows(7).any(|w| w == b"hunter2"));
        let opened = key().open(&row, &sealed.nonce, &sealed.ciphertext).unwrap();
        assert_eq!(opened.expose(), b"hunter2");

        for other in [
            binding(2, Provider::Vapi, SecretKind::WebhookSigning),
            binding(1, Provider::Retell, SecretKind::WebhookSigning),
            binding(1, Provider::Vapi, SecretKind::ApiKey),
        ] {
            assert_eq!(
                key().open(&other, &sealed.nonce, &sealed.ciphertext),
                Err(SealError::Open),
                "{other:?}"
            );
        }
        let other_key =
            SecretsKey::from_base64(&base64::engine::general_purpose::STANDARD.encode([1; 32]))
                .unwrap();
        assert_eq!(
            other_key.open(&row, &sealed.nonce, &sealed.ciphertext),
            Err(SealError::Open)
        );
        let mut tampered = sealed.ciphertext.clone();
        tampered[0] ^= 1;
        assert_eq!(
            key().open(&row, &sealed.nonce, &tampered),
            Err(SealError::Open)
        );
        assert_eq!(
            key().open(&row, &sealed.nonce[..12], &sealed.ciphertext),
            Err(SealError::BadNonce(12))
        );
    }

    #[test]
    fn every_seal_takes_a_fresh_nonce() {
        let row = binding(1, Provider::Twilio, SecretKind::WebhookSigning);
        let a = key().seal(&row, b"same").unwrap();
        let b = key().seal(&row, b"same").unwrap();
        assert_ne!(a.nonce, b.nonce);
        assert_ne!(a.ciphertext, b.ciphertext);
    }

    #[test]
    fn the_scheme_is_pinned() {
        // Recorded from this implementation: a change of cipher, associated data or layout would
        // strand every stored secret, so it must fail here first.
        let row = binding(7, Provider::Retell, SecretKind::WebhookSigning);
        let sealed = key().seal_with_nonce(&row, b"key_abc", [9; 24]).unwrap();
        assert_eq!(
            hex::encode(&sealed.ciphertext),
            "7e454d20dd2d659df03374dac109cf70ab07198e70e333"
        );
    }

    #[test]
    fn keys_are_32_bytes_of_base64() {
        assert!(SecretsKey::from_base64(&format!("  {KEY}\n")).is_ok());
        assert!(SecretsKey::from_base64(KEY.trim_end_matches('=')).is_ok());
        assert_eq!(
            SecretsKey::from_base64("").err(),
            Some(SecretsKeyError::Missing)
        );
        assert_eq!(
            SecretsKey::from_base64("not base64!").err(),
            Some(SecretsKeyError::NotBase64)
        );
        assert_eq!(
            SecretsKey::from_base64("AAAA").err(),
            Some(SecretsKeyError::WrongLength(3))
        );
        assert!(matches!(SecretsKey::from_env_value(None), Ok(None)));
        assert!(matches!(SecretsKey::from_env_value(Some(" ")), Ok(None)));
        assert!(SecretsKey::from_env_value(Some("AAAA")).is_err());
        for err in [
            SecretsKeyError::Missing,
            SecretsKeyError::NotBase64,
            SecretsKeyError::WrongLength(3),
        ] {
            assert!(err.to_string().contains(SECRETS_KEY_VAR), "{err}");
        }
        assert_eq!(format!("{:?}", key()), "SecretsKey(..)");
    }
}
