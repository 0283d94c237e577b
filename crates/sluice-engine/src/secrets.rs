//! Encryption at rest: secret action properties and access-key secrets are sealed with
//! XChaCha20-Poly1305 under the master key; paging tokens are sealed the same way so callers
//! cannot forge or read them.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;

const NONCE_LEN: usize = 24;
/// Length of a master key in bytes.
pub const KEY_LEN: usize = 32;

/// Seals and opens byte strings under one master key.
#[derive(Clone)]
pub struct SecretBox {
    cipher: XChaCha20Poly1305,
    /// A MAC key derived from the master key for signing tokens (Cloudforet JWTs), so the master
    /// key itself never signs anything a client can see.
    token_key: [u8; KEY_LEN],
}

impl std::fmt::Debug for SecretBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretBox(..)")
    }
}

impl SecretBox {
    pub fn new(key: &[u8; KEY_LEN]) -> Self {
        SecretBox {
            cipher: XChaCha20Poly1305::new(key.into()),
            token_key: derive(key, b"sluice token key v1"),
        }
    }

    /// HMAC-SHA256 of `data` under the token key.
    pub fn token_mac(&self, data: &[u8]) -> [u8; 32] {
        derive(&self.token_key, data)
    }

    /// A fresh random master key.
    pub fn generate_key() -> [u8; KEY_LEN] {
        let mut key = [0u8; KEY_LEN];
        rand::thread_rng().fill_bytes(&mut key);
        key
    }

    /// `nonce || ciphertext`.
    pub fn seal(&self, plaintext: &[u8]) -> Vec<u8> {
        let mut nonce = [0u8; NONCE_LEN];
        rand::thread_rng().fill_bytes(&mut nonce);
        let ciphertext = self
            .cipher
            .encrypt(XNonce::from_slice(&nonce), plaintext)
            .expect("XChaCha20-Poly1305 encryption of an in-memory buffer cannot fail");
        let mut sealed = nonce.to_vec();
        sealed.extend_from_slice(&ciphertext);
        sealed
    }

    /// The plaintext, or None if `sealed` was not made by this key or was altered.
    pub fn open(&self, sealed: &[u8]) -> Option<Vec<u8>> {
        if sealed.len() < NONCE_LEN {
            return None;
        }
        let (nonce, ciphertext) = sealed.split_at(NONCE_LEN);
        self.cipher.decrypt(XNonce::from_slice(nonce), ciphertext).ok()
    }

    pub fn seal_token(&self, plain: &str) -> String {
        URL_SAFE_NO_PAD.encode(self.seal(plain.as_bytes()))
    }

    pub fn open_token(&self, token: &str) -> Option<String> {
        let sealed = URL_SAFE_NO_PAD.decode(token).ok()?;
        String::from_utf8(self.open(&sealed)?).ok()
    }
}

fn derive(key: &[u8], data: &[u8]) -> [u8; 32] {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(data);
    mac.finalize().into_bytes().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_open_round_trip_and_tamper() {
        let sb = SecretBox::new(&SecretBox::generate_key());
        let sealed = sb.seal(b"hunter2");
        assert!(!sealed.windows(7).any(|w| w == b"hunter2"));
        assert_eq!(sb.open(&sealed).as_deref(), Some(&b"hunter2"[..]));
        let mut tampered = sealed.clone();
        *tampered.last_mut().unwrap() ^= 1;
        assert_eq!(sb.open(&tampered), None);
        assert_eq!(sb.open(&sealed[..10]), None);
        let other = SecretBox::new(&SecretBox::generate_key());
        assert_eq!(other.open(&sealed), None);
    }

    #[test]
    fn tokens_are_opaque_and_unforgeable() {
        let sb = SecretBox::new(&SecretBox::generate_key());
        // A long marker: a short one (it was "p7") turns up in random base64 now and then.
        let plain = "pipelines\nafter-the-pipeline-named-nightly-release";
        let token = sb.seal_token(plain);
        assert!(!token.contains("nightly-release") && !token.contains("pipelines"));
        assert_eq!(sb.open_token(&token).as_deref(), Some(plain));
        assert_eq!(sb.open_token("not-a-token"), None);
        assert_eq!(sb.open_token(""), None);
    }
}
