//! Device identity: an Ed25519 key pair per edge device.
//!
//! Files are one line of text each, so an operator can read and copy them:
//! - private key: `vigil-device-key-v1 <device_id> <hex 32-byte seed>`,
//!   written with mode 0600;
//! - public key: `<device_id> ed25519:<hex 32-byte key>`, what the case
//!   system registers. A keyring is several such lines (`#` comments allowed).

use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};

use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};

use crate::EvidenceError;

const PRIVATE_TAG: &str = "vigil-device-key-v1";

/// A device's signing key.
pub struct DeviceKey {
    pub device_id: String,
    key: SigningKey,
}

impl std::fmt::Debug for DeviceKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the secret.
        f.debug_struct("DeviceKey")
            .field("device_id", &self.device_id)
            .field("public", &hex::encode(self.key.verifying_key().as_bytes()))
            .finish()
    }
}

fn bad(path: &Path, reason: impl Into<String>) -> EvidenceError {
    EvidenceError::Key {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> EvidenceError + '_ {
    move |source| EvidenceError::Io {
        path: path.to_path_buf(),
        source,
    }
}

impl DeviceKey {
    pub fn generate(device_id: &str) -> Self {
        Self {
            device_id: device_id.to_owned(),
            key: SigningKey::generate(&mut rand_core::OsRng),
        }
    }

    /// A key from a fixed seed (tests and benchmarks).
    pub fn from_seed(device_id: &str, seed: [u8; 32]) -> Self {
        Self {
            device_id: device_id.to_owned(),
            key: SigningKey::from_bytes(&seed),
        }
    }

    pub fn public(&self) -> PublicKey {
        PublicKey {
            device_id: self.device_id.clone(),
            key: self.key.verifying_key(),
        }
    }

    pub fn sign(&self, message: &[u8]) -> Signature {
        self.key.sign(message)
    }

    /// Writes the private key (mode 0600, refusing to overwrite) and the
    /// public key beside it (`<path>.pub`). Returns the public key's path.
    pub fn write(&self, path: &Path) -> Result<PathBuf, EvidenceError> {
        if path.exists() {
            return Err(bad(
                path,
                "a key already exists here; refusing to overwrite a device identity",
            ));
        }
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(io(dir))?;
        }
        let mut options = OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut f = options.open(path).map_err(io(path))?;
        writeln!(
            f,
            "{PRIVATE_TAG} {} {}",
            self.device_id,
            hex::encode(self.key.to_bytes())
        )
        .map_err(io(path))?;
        f.sync_all().map_err(io(path))?;
        let public_path = public_path_of(path);
        std::fs::write(&public_path, self.public().to_line() + "\n").map_err(io(&public_path))?;
        Ok(public_path)
    }

    pub fn read(path: &Path) -> Result<Self, EvidenceError> {
        let text = std::fs::read_to_string(path).map_err(io(path))?;
        let parts: Vec<&str> = text.split_whitespace().collect();
        let [tag, device, seed] = parts[..] else {
            return Err(bad(
                path,
                format!("expected `{PRIVATE_TAG} DEVICE_ID HEX_SEED`"),
            ));
        };
        if tag != PRIVATE_TAG {
            return Err(bad(
                path,
                format!("not a Vigil device key (expected {PRIVATE_TAG})"),
            ));
        }
        let seed: [u8; 32] = hex::decode(seed)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| bad(path, "the seed must be 64 hex digits"))?;
        Ok(Self::from_seed(device, seed))
    }
}

/// `<key>.pub` beside a private key file.
pub fn public_path_of(private: &Path) -> PathBuf {
    let mut name = private.as_os_str().to_owned();
    name.push(".pub");
    PathBuf::from(name)
}

/// A device's public key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKey {
    pub device_id: String,
    key: VerifyingKey,
}

impl PublicKey {
    pub fn to_line(&self) -> String {
        format!(
            "{} ed25519:{}",
            self.device_id,
            hex::encode(self.key.as_bytes())
        )
    }

    /// Parses `<device_id> ed25519:<hex>`.
    pub fn parse_line(line: &str) -> Result<Self, String> {
        let parts: Vec<&str> = line.split_whitespace().collect();
        let [device, key] = parts[..] else {
            return Err("expected `DEVICE_ID ed25519:HEX`".into());
        };
        let hex_key = key
            .strip_prefix("ed25519:")
            .ok_or("the key must start with `ed25519:`")?;
        let bytes: [u8; 32] = hex::decode(hex_key)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or("an Ed25519 public key is 64 hex digits")?;
        let key = VerifyingKey::from_bytes(&bytes)
            .map_err(|e| format!("not a valid Ed25519 key: {e}"))?;
        Ok(Self {
            device_id: device.to_owned(),
            key,
        })
    }

    pub fn verify(&self, message: &[u8], signature: &Signature) -> bool {
        self.key.verify(message, signature).is_ok()
    }

    /// Hex of the raw key bytes.
    pub fn hex(&self) -> String {
        hex::encode(self.key.as_bytes())
    }
}

/// Registered public keys, by device id.
#[derive(Debug, Clone, Default)]
pub struct Keyring {
    keys: BTreeMap<String, PublicKey>,
}

impl Keyring {
    pub fn insert(&mut self, key: PublicKey) {
        self.keys.insert(key.device_id.clone(), key);
    }

    pub fn get(&self, device_id: &str) -> Option<&PublicKey> {
        self.keys.get(device_id)
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// The registered device ids, sorted.
    pub fn device_ids(&self) -> Vec<String> {
        self.keys.keys().cloned().collect()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Reads public-key lines from a file (a `.pub` or a keyring).
    pub fn read(path: &Path) -> Result<Self, EvidenceError> {
        let text = std::fs::read_to_string(path).map_err(io(path))?;
        let mut ring = Keyring::default();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let key = PublicKey::parse_line(line)
                .map_err(|reason| bad(path, format!("line {}: {reason}", n + 1)))?;
            ring.insert(key);
        }
        if ring.is_empty() {
            return Err(bad(path, "no public keys in the file"));
        }
        Ok(ring)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_written_key_reads_back_and_its_file_is_private() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("keys/device.key");
        let key = DeviceKey::generate("edge-1");
        let public_path = key.write(&path).expect("write");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let back = DeviceKey::read(&path).expect("read");
        let ring = Keyring::read(&public_path).expect("ring");
        let sig = back.sign(b"hello");
        assert!(ring.get("edge-1").expect("key").verify(b"hello", &sig));
        assert!(!ring.get("edge-1").expect("key").verify(b"hellO", &sig));
        let again = key.write(&path).expect_err("no overwrite");
        assert!(
            again.to_string().contains("refusing to overwrite"),
            "{again}"
        );
    }

    #[test]
    fn malformed_key_lines_say_what_is_wrong() {
        let err = PublicKey::parse_line("edge-1 rsa:abcd").expect_err("bad");
        assert!(err.contains("ed25519:"), "{err}");
        let err = PublicKey::parse_line("edge-1 ed25519:abcd").expect_err("bad");
        assert!(err.contains("64 hex digits"), "{err}");
    }
}
