//! HMAC signatures over key and value.

use hmac::{Hmac, Mac};

/// The hash behind the HMAC, chosen by configuration (`digestmod=`) only —
/// a stored value never picks it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Digest {
    /// HMAC-SHA-256 (the default).
    #[default]
    Sha256,
    /// HMAC-SHA-512.
    Sha512,
    /// HMAC-SHA-1 (for compatibility).
    Sha1,
    /// HMAC-MD5 (for compatibility).
    Md5,
}

impl Digest {
    /// Accepted `digestmod` names.
    pub const NAMES: &'static [&'static str] = &["sha256", "sha512", "sha1", "md5"];

    /// Looks a digest up by name.
    pub fn from_name(name: &str) -> Option<Digest> {
        Some(match name.to_ascii_lowercase().as_str() {
            "sha256" => Digest::Sha256,
            "sha512" => Digest::Sha512,
            "sha1" => Digest::Sha1,
            "md5" => Digest::Md5,
            _ => return None,
        })
    }

    /// The name cashews writes before a signature (`md5:…_`).
    pub fn name(self) -> &'static str {
        match self {
            Digest::Sha256 => "sha256",
            Digest::Sha512 => "sha512",
            Digest::Sha1 => "sha1",
            Digest::Md5 => "md5",
        }
    }

    pub(crate) fn id(self) -> u8 {
        match self {
            Digest::Sha256 => 1,
            Digest::Sha512 => 2,
            Digest::Sha1 => 3,
            Digest::Md5 => 4,
        }
    }

    pub(crate) fn mac_len(self) -> usize {
        match self {
            Digest::Sha256 => 32,
            Digest::Sha512 => 64,
            Digest::Sha1 => 20,
            Digest::Md5 => 16,
        }
    }
}

/// Signs and verifies `(key, header, payload)` with a secret.
#[derive(Clone)]
pub(crate) struct Signer {
    secret: Box<[u8]>,
    pub(crate) digest: Digest,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer")
            .field("digest", &self.digest)
            .finish_non_exhaustive()
    }
}

macro_rules! with_mac {
    ($digest:expr, $secret:expr, |$mac:ident| $body:expr) => {
        match $digest {
            Digest::Sha256 => {
                let mut $mac = <Hmac<sha2::Sha256>>::new_from_slice($secret)
                    .expect("hmac takes any key length");
                $body
            }
            Digest::Sha512 => {
                let mut $mac = <Hmac<sha2::Sha512>>::new_from_slice($secret)
                    .expect("hmac takes any key length");
                $body
            }
            Digest::Sha1 => {
                let mut $mac =
                    <Hmac<sha1::Sha1>>::new_from_slice($secret).expect("hmac takes any key length");
                $body
            }
            Digest::Md5 => {
                let mut $mac =
                    <Hmac<md5::Md5>>::new_from_slice($secret).expect("hmac takes any key length");
                $body
            }
        }
    };
}

impl Signer {
    pub(crate) fn new(secret: &[u8], digest: Digest) -> Signer {
        Signer {
            secret: secret.into(),
            digest,
        }
    }

    /// Writes the MAC of `(key, header, payload)` into `out` (`mac_len` bytes).
    pub(crate) fn sign(&self, key: &str, header: &[u8], payload: &[u8], out: &mut [u8]) {
        with_mac!(self.digest, &self.secret, |mac| {
            feed(&mut mac, key, header, payload);
            out.copy_from_slice(&mac.finalize().into_bytes());
        })
    }

    /// Constant-time check of `tag` against `(key, header, payload)`.
    pub(crate) fn verify(&self, key: &str, header: &[u8], payload: &[u8], tag: &[u8]) -> bool {
        with_mac!(self.digest, &self.secret, |mac| {
            feed(&mut mac, key, header, payload);
            mac.verify_slice(tag).is_ok()
        })
    }
}

#[cfg(feature = "python")]
use std::fmt::Write as _;

#[cfg(feature = "python")]
impl Signer {
    /// Python cashews' signature: the hex HMAC of the key's bytes followed
    /// by the payload (no length prefix: cashews' own form).
    pub(crate) fn sign_cashews(&self, key: &str, payload: &[u8]) -> String {
        with_mac!(self.digest, &self.secret, |mac| {
            mac.update(key.as_bytes());
            mac.update(payload);
            let mut hex = String::with_capacity(2 * self.digest.mac_len());
            for byte in mac.finalize().into_bytes() {
                let _ = write!(hex, "{byte:02x}");
            }
            hex
        })
    }

    /// Constant-time check of a hex signature in cashews' form.
    pub(crate) fn verify_cashews(&self, key: &str, payload: &[u8], hex: &[u8]) -> bool {
        if hex.len() != 2 * self.digest.mac_len() || !hex.iter().all(u8::is_ascii_hexdigit) {
            return false;
        }
        let Some(tag) = hex
            .chunks(2)
            .map(|pair| {
                let pair = std::str::from_utf8(pair).ok()?;
                u8::from_str_radix(pair, 16).ok()
            })
            .collect::<Option<Vec<u8>>>()
        else {
            return false;
        };
        with_mac!(self.digest, &self.secret, |mac| {
            mac.update(key.as_bytes());
            mac.update(payload);
            mac.verify_slice(&tag).is_ok()
        })
    }
}

/// The key is length-prefixed so `("ab", "c")` and `("a", "bc")` differ.
fn feed(mac: &mut impl Mac, key: &str, header: &[u8], payload: &[u8]) {
    mac.update(&(key.len() as u64).to_be_bytes());
    mac.update(key.as_bytes());
    mac.update(header);
    mac.update(payload);
}
