//! Page encryption: XChaCha20-Poly1305 over every page but the header, keyed from raw
//! bytes or from a passphrase through Argon2id. Layout in `docs/format.md`
//! ("Encryption").
//!
//! The engine works on logical pages (`page_size - RESERVED` bytes, ending in the usual
//! CRC trailer). On disk and in WAL frames a page is `ciphertext ‖ tag ‖ nonce`, with a
//! fresh random nonce per write and the page number as associated data, so a page moved to
//! another place or altered in any byte fails authentication. The header page stays
//! readable (it says the file is encrypted and holds the key check) and is padded instead.

use crate::error::{Error, Result};

/// Bytes each physical page reserves for the tag (16) and nonce (24).
pub const RESERVED: usize = 40;
#[cfg_attr(not(feature = "encryption"), allow(dead_code))]
const TAG: usize = 16;

/// How the caller supplies the key.
#[derive(Clone, PartialEq, Eq)]
pub enum EncryptionKey {
    /// 32 bytes used as the key.
    Raw([u8; 32]),
    /// A passphrase stretched with Argon2id and the file's salt.
    Passphrase(String),
}

impl std::fmt::Debug for EncryptionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Keys never reach logs or reprs.
        match self {
            EncryptionKey::Raw(_) => f.write_str("EncryptionKey::Raw(<redacted>)"),
            EncryptionKey::Passphrase(_) => f.write_str("EncryptionKey::Passphrase(<redacted>)"),
        }
    }
}

/// KDF codes stored in the header.
#[cfg_attr(not(feature = "encryption"), allow(dead_code))]
pub const KDF_RAW: u8 = 1;
#[cfg_attr(not(feature = "encryption"), allow(dead_code))]
pub const KDF_ARGON2ID: u8 = 2;

/// 16 random bytes from the operating system, for a KDF salt.
pub fn random_salt() -> Result<[u8; 16]> {
    #[cfg(feature = "encryption")]
    {
        use chacha20poly1305::aead::rand_core::RngCore;
        let mut salt = [0u8; 16];
        chacha20poly1305::aead::OsRng
            .try_fill_bytes(&mut salt)
            .map_err(|e| Error::Encryption(format!("no randomness for the key salt: {e}")))?;
        Ok(salt)
    }
    #[cfg(not(feature = "encryption"))]
    Err(Error::FeatureUnsupported(
        "encryption: this build has no encryption".into(),
    ))
}

#[cfg(feature = "encryption")]
pub struct PageCipher {
    aead: chacha20poly1305::XChaCha20Poly1305,
}

#[cfg(not(feature = "encryption"))]
pub struct PageCipher {
    _never: std::convert::Infallible,
}

#[cfg(feature = "encryption")]
impl PageCipher {
    /// Derives the page key; returns it with the KDF code to record.
    pub fn new(key: &EncryptionKey, salt: &[u8; 16]) -> Result<(PageCipher, u8)> {
        use chacha20poly1305::KeyInit;
        let (bytes, kdf) = match key {
            EncryptionKey::Raw(k) => (*k, KDF_RAW),
            EncryptionKey::Passphrase(p) => {
                let mut out = [0u8; 32];
                argon2::Argon2::default()
                    .hash_password_into(p.as_bytes(), salt, &mut out)
                    .map_err(|e| Error::Encryption(format!("key derivation failed: {e}")))?;
                (out, KDF_ARGON2ID)
            }
        };
        let aead = chacha20poly1305::XChaCha20Poly1305::new((&bytes).into());
        Ok((PageCipher { aead }, kdf))
    }

    /// A value stored in the header that only the right key reproduces.
    pub fn key_check(&self) -> [u8; 16] {
        use chacha20poly1305::aead::{Aead, Payload};
        let nonce = chacha20poly1305::XNonce::default();
        let tag = self
            .aead
            .encrypt(
                &nonce,
                Payload {
                    msg: &[],
                    aad: b"obj key check v1",
                },
            )
            .unwrap_or_default();
        let mut out = [0u8; 16];
        out.copy_from_slice(&tag[..16.min(tag.len())]);
        out
    }

    /// Encrypts a logical page into its physical form.
    pub fn seal(&self, no: u64, logical: &[u8]) -> Result<Vec<u8>> {
        use chacha20poly1305::aead::{AeadCore, AeadInPlace, OsRng};
        let nonce = chacha20poly1305::XChaCha20Poly1305::generate_nonce(&mut OsRng);
        let mut out = Vec::with_capacity(logical.len() + RESERVED);
        out.extend_from_slice(logical);
        let tag = self
            .aead
            .encrypt_in_place_detached(&nonce, &no.to_le_bytes(), &mut out)
            .map_err(|_| Error::Encryption("page encryption failed".into()))?;
        out.extend_from_slice(&tag);
        out.extend_from_slice(&nonce);
        Ok(out)
    }

    /// Decrypts and authenticates a physical page.
    pub fn open(&self, no: u64, physical: &[u8]) -> Result<Vec<u8>> {
        use chacha20poly1305::aead::AeadInPlace;
        let n = physical.len() - RESERVED;
        let (body, rest) = physical.split_at(n);
        let (tag, nonce) = rest.split_at(TAG);
        let mut out = body.to_vec();
        self.aead
            .decrypt_in_place_detached(nonce.into(), &no.to_le_bytes(), &mut out, tag.into())
            .map_err(|_| Error::corrupt_page(no, "failed authentication (damaged or tampered)"))?;
        Ok(out)
    }
}

#[cfg(not(feature = "encryption"))]
impl PageCipher {
    pub fn new(_key: &EncryptionKey, _salt: &[u8; 16]) -> Result<(PageCipher, u8)> {
        Err(Error::FeatureUnsupported(
            "encryption: this build has no encryption".into(),
        ))
    }
    pub fn key_check(&self) -> [u8; 16] {
        match self._never {}
    }
    pub fn seal(&self, _no: u64, _logical: &[u8]) -> Result<Vec<u8>> {
        match self._never {}
    }
    pub fn open(&self, _no: u64, _physical: &[u8]) -> Result<Vec<u8>> {
        match self._never {}
    }
}

#[cfg(all(test, feature = "encryption"))]
mod tests {
    use super::*;

    #[test]
    fn pages_round_trip_and_fail_when_altered_moved_or_wrong_key() {
        let (c, kdf) = PageCipher::new(&EncryptionKey::Raw([7; 32]), &[1; 16]).unwrap();
        assert_eq!(kdf, KDF_RAW);
        let logical = vec![42u8; 4096 - RESERVED];
        let sealed = c.seal(5, &logical).unwrap();
        assert_eq!(sealed.len(), 4096);
        assert_eq!(c.open(5, &sealed).unwrap(), logical);
        assert!(c.open(6, &sealed).is_err(), "a page moved elsewhere fails");
        let mut bad = sealed.clone();
        bad[100] ^= 1;
        assert!(c.open(5, &bad).is_err());
        let (other, _) =
            PageCipher::new(&EncryptionKey::Passphrase("hunter2".into()), &[1; 16]).unwrap();
        assert!(other.open(5, &sealed).is_err());
        assert_ne!(c.key_check(), other.key_check());
        assert!(!format!("{:?}", EncryptionKey::Passphrase("hunter2".into())).contains("hunter2"));
    }
}
