//! Secrets at rest and random numbers, on aws-lc-rs: the crypto library rustls, sqlx and the
//! AWS SDK already use here, so no second backend is linked.
//!
//! A [`SealingKey`] encrypts small secrets (webhook signing keys) with AES-256-GCM before
//! they reach the database. Its key comes from the environment or Secrets Manager, never
//! from the database, so a copy of the database alone cannot sign in the shop's name.

use aws_lc_rs::aead::{AES_256_GCM, Aad, NONCE_LEN, Nonce, RandomizedNonceKey};
use aws_lc_rs::hkdf::{HKDF_SHA256, Salt};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use crate::secret::Secret;

/// Shortest accepted key material: 256 bits, as many as the cipher's key.
pub const MIN_SEALING_KEY_BYTES: usize = 32;

/// Marks the format of a sealed value, so that another one can come later and both be read.
const SEALED_PREFIX: &str = "v1.";

/// Fills `buf` from the operating system's CSPRNG.
pub fn random_bytes(buf: &mut [u8]) {
    // Fails only when the kernel cannot provide randomness: nothing sensible can go on.
    aws_lc_rs::rand::fill(buf).expect("the system's random number generator failed");
}

/// A random 64-bit number from the CSPRNG.
pub fn random_u64() -> u64 {
    let mut buf = [0u8; 8];
    random_bytes(&mut buf);
    u64::from_le_bytes(buf)
}

#[derive(Debug, thiserror::Error)]
pub enum SealError {
    #[error("the sealing key must be at least {MIN_SEALING_KEY_BYTES} bytes")]
    KeyTooShort,
    /// Tampered with, sealed under another key, or bound to another record.
    #[error("the sealed value cannot be opened with this key")]
    Unopenable,
}

/// AES-256-GCM under a key derived (HKDF-SHA256) from a configured secret of any form: a
/// Secrets Manager generated password works as well as 32 random bytes in base64.
pub struct SealingKey {
    key: RandomizedNonceKey,
}

impl std::fmt::Debug for SealingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SealingKey(..)")
    }
}

impl SealingKey {
    pub fn from_secret(secret: &Secret) -> Result<Self, SealError> {
        let material = secret.expose().as_bytes();
        if material.len() < MIN_SEALING_KEY_BYTES {
            return Err(SealError::KeyTooShort);
        }
        let mut key = [0u8; 32];
        Salt::new(HKDF_SHA256, b"shop sealing key")
            .extract(material)
            .expand(&[b"webhook secrets"], HKDF_SHA256)
            .and_then(|okm| okm.fill(&mut key))
            .expect("HKDF-SHA256 yields 32 bytes");
        let key = RandomizedNonceKey::new(&AES_256_GCM, &key).expect("a 256-bit AES key");
        Ok(Self { key })
    }

    /// Encrypts `plaintext`, bound to `context` (e.g. the record it belongs to): a sealed
    /// value copied into another record does not open there. Text, for a text column.
    pub fn seal(&self, plaintext: &[u8], context: &[u8]) -> String {
        let mut in_out = plaintext.to_vec();
        let nonce = self
            .key
            .seal_in_place_append_tag(Aad::from(context), &mut in_out)
            .expect("AES-GCM sealing of a small value");
        let mut bytes = nonce.as_ref().to_vec();
        bytes.extend_from_slice(&in_out);
        format!("{SEALED_PREFIX}{}", STANDARD.encode(bytes))
    }

    pub fn open(&self, sealed: &str, context: &[u8]) -> Result<Vec<u8>, SealError> {
        let bytes = sealed
            .strip_prefix(SEALED_PREFIX)
            .and_then(|b64| STANDARD.decode(b64).ok())
            .filter(|b| b.len() >= NONCE_LEN)
            .ok_or(SealError::Unopenable)?;
        let (nonce, ciphertext) = bytes.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| SealError::Unopenable)?;
        let mut in_out = ciphertext.to_vec();
        let plaintext = self
            .key
            .open_in_place(nonce, Aad::from(context), &mut in_out)
            .map_err(|_| SealError::Unopenable)?;
        Ok(plaintext.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(text: &str) -> SealingKey {
        SealingKey::from_secret(&Secret::new(text)).unwrap()
    }

    #[test]
    fn sealed_values_open_only_with_the_same_key_and_context() {
        let a = key("0123456789abcdef0123456789abcdef");
        let b = key("0123456789abcdef0123456789abcdeF");
        let sealed = a.seal(b"signing key", b"endpoint 1");
        assert!(!sealed.contains("signing key"));
        assert_eq!(a.open(&sealed, b"endpoint 1").unwrap(), b"signing key");
        assert!(a.open(&sealed, b"endpoint 2").is_err());
        assert!(b.open(&sealed, b"endpoint 1").is_err());
        assert!(a.open("v1.AAAA", b"endpoint 1").is_err());
        assert!(a.open("garbage", b"endpoint 1").is_err());
        // A fresh nonce every time: the same secret never seals to the same text.
        assert_ne!(sealed, a.seal(b"signing key", b"endpoint 1"));
    }

    #[test]
    fn short_keys_are_refused() {
        let short = SealingKey::from_secret(&Secret::new("too short"));
        assert!(matches!(short, Err(SealError::KeyTooShort)));
    }

    #[test]
    fn random_numbers_differ() {
        assert_ne!(random_u64(), random_u64());
    }
}
