//! The Snowflake user's RSA private key: read from PKCS#8 PEM (encrypted with a
//! passphrase or not), checked, and fingerprinted as Snowflake shows it.

use std::fmt;

use base64::Engine as _;
use pkcs8::der::pem::{LineEnding, PemLabel as _};
use pkcs8::{
    DecodePrivateKey as _, EncodePublicKey as _, EncryptedPrivateKeyInfo, PrivateKeyInfo, SecretDocument,
};
use rsa::RsaPrivateKey;
use sha2::{Digest as _, Sha256};

/// The command that turns a PKCS#1 key into the PKCS#8 key Snowflake's connectors
/// take (as Customer.io's Snowflake guide gives it).
pub const PKCS1_TO_PKCS8: &str =
    "openssl pkcs8 -topk8 -inform PEM -outform PEM -in existing_key.pem -out new_key.p8 -nocrypt";

/// The OID of `rsaEncryption`.
const RSA_ENCRYPTION: pkcs8::ObjectIdentifier = pkcs8::ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");

/// A readable RSA private key: its unencrypted PKCS#8 PEM (what the connector signs
/// the login token with) and the fingerprint of its public key.
pub(crate) struct PrivateKey {
    /// Unencrypted PKCS#8 PEM. Never shown.
    pem: String,
    fingerprint: String,
}

impl PrivateKey {
    /// The unencrypted PKCS#8 PEM.
    pub(crate) fn pem(&self) -> &str {
        &self.pem
    }

    /// `SHA256:` and the standard base64 of the SHA-256 of the public key's DER
    /// `SubjectPublicKeyInfo`: what `DESC USER` shows as `RSA_PUBLIC_KEY_FP`.
    pub(crate) fn fingerprint(&self) -> &str {
        &self.fingerprint
    }
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PrivateKey").field("fingerprint", &self.fingerprint).finish_non_exhaustive()
    }
}

/// Why a key cannot be used. The messages never quote the key or the passphrase.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum KeyError {
    /// `-----BEGIN RSA PRIVATE KEY-----`: PKCS#1, to be converted.
    Pkcs1,
    /// No PEM block, or one of another kind (the label, which is not secret).
    NotPkcs8 { label: Option<String> },
    /// An encrypted key and no passphrase.
    PassphraseMissing,
    /// A passphrase for a key that is not encrypted.
    PassphraseUnexpected,
    /// The passphrase does not decrypt the key (or the encryption scheme is not one
    /// that can be read).
    Decrypt { detail: String },
    /// A PKCS#8 key of another algorithm (EC, Ed25519, …).
    NotRsa,
    /// The PEM or the key inside it is malformed.
    Malformed { detail: String },
}

impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyError::Pkcs1 => write!(
                f,
                "the private key is a PKCS#1 key (-----BEGIN RSA PRIVATE KEY-----); Snowflake key-pair \
                 authentication takes PKCS#8. Convert it with: {PKCS1_TO_PKCS8}"
            ),
            KeyError::NotPkcs8 { label: Some(label) } => write!(
                f,
                "the private key is a PEM block of type {label:?}; expected a PKCS#8 RSA key \
                 (-----BEGIN PRIVATE KEY----- or -----BEGIN ENCRYPTED PRIVATE KEY-----)"
            ),
            KeyError::NotPkcs8 { label: None } => f.write_str(
                "the private key is not PEM; expected a PKCS#8 RSA key (-----BEGIN PRIVATE KEY----- or \
                 -----BEGIN ENCRYPTED PRIVATE KEY-----)",
            ),
            KeyError::PassphraseMissing => {
                f.write_str("the private key is encrypted (-----BEGIN ENCRYPTED PRIVATE KEY-----) and no passphrase was given")
            }
            KeyError::PassphraseUnexpected => {
                f.write_str("a passphrase was given, but the private key is not encrypted")
            }
            KeyError::Decrypt { detail } => {
                write!(f, "the passphrase does not decrypt the private key ({detail})")
            }
            KeyError::NotRsa => f.write_str(
                "the private key is not an RSA key; Snowflake key-pair authentication takes RSA keys \
                 (openssl genrsa 2048 | openssl pkcs8 -topk8 -inform PEM -out rsa_key.p8 -nocrypt)",
            ),
            KeyError::Malformed { detail } => write!(f, "the private key cannot be read: {detail}"),
        }
    }
}

/// The label of the first PEM block in `text` (`PRIVATE KEY`), if there is one.
fn pem_label(text: &str) -> Option<&str> {
    let start = text.find("-----BEGIN ")? + "-----BEGIN ".len();
    let end = text[start..].find("-----")?;
    Some(&text[start..start + end])
}

/// Reads an RSA private key from PKCS#8 PEM, decrypting it with `passphrase` when it
/// is encrypted. A PEM whose line breaks were written as the two characters `\n` (as
/// in some environment variables) is read too.
pub(crate) fn read(pem: &str, passphrase: Option<&[u8]>) -> Result<PrivateKey, KeyError> {
    let unescaped;
    let pem = if !pem.contains('\n') && pem.contains("\\n") {
        unescaped = pem.replace("\\n", "\n");
        unescaped.as_str()
    } else {
        pem
    };
    let pem = pem.trim();
    let malformed = |e: &dyn fmt::Display| KeyError::Malformed { detail: e.to_string() };
    let document = match pem_label(pem) {
        Some("RSA PRIVATE KEY") => return Err(KeyError::Pkcs1),
        Some("ENCRYPTED PRIVATE KEY") => {
            let passphrase = passphrase.ok_or(KeyError::PassphraseMissing)?;
            let (_, encrypted) = SecretDocument::from_pem(pem).map_err(|e| malformed(&e))?;
            let info = EncryptedPrivateKeyInfo::try_from(encrypted.as_bytes()).map_err(|e| malformed(&e))?;
            let decrypted =
                info.decrypt(passphrase).map_err(|e| KeyError::Decrypt { detail: e.to_string() })?;
            // A wrong passphrase can decrypt to bytes with valid padding by chance:
            // then they are not a key.
            if PrivateKeyInfo::try_from(decrypted.as_bytes()).is_err() {
                return Err(KeyError::Decrypt { detail: "the decrypted bytes are not a key".to_owned() });
            }
            decrypted
        }
        Some("PRIVATE KEY") => {
            if passphrase.is_some() {
                return Err(KeyError::PassphraseUnexpected);
            }
            SecretDocument::from_pem(pem).map_err(|e| malformed(&e))?.1
        }
        label => return Err(KeyError::NotPkcs8 { label: label.map(str::to_owned) }),
    };
    let info = PrivateKeyInfo::try_from(document.as_bytes()).map_err(|e| malformed(&e))?;
    if info.algorithm.oid != RSA_ENCRYPTION {
        return Err(KeyError::NotRsa);
    }
    let key = RsaPrivateKey::from_pkcs8_der(document.as_bytes()).map_err(|e| malformed(&e))?;
    let public = key.to_public_key().to_public_key_der().map_err(|e| malformed(&e))?;
    let fingerprint = format!(
        "SHA256:{}",
        base64::engine::general_purpose::STANDARD.encode(Sha256::digest(public.as_bytes()))
    );
    let pem = document.to_pem(PrivateKeyInfo::PEM_LABEL, LineEnding::LF).map_err(|e| malformed(&e))?;
    Ok(PrivateKey { pem: pem.to_string(), fingerprint })
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = include_str!("../../tests/data/snowflake-key.p8");
    const ENCRYPTED: &str = include_str!("../../tests/data/snowflake-key-encrypted.p8");
    const PKCS1: &str = include_str!("../../tests/data/snowflake-key-pkcs1.pem");
    const OTHER: &str = include_str!("../../tests/data/snowflake-other-key.p8");
    const EC: &str = include_str!("../../tests/data/snowflake-ec-key.p8");
    const PASSPHRASE: &[u8] = b"correct-horse-battery";
    /// From `openssl rsa -pubout -outform DER | openssl dgst -sha256 -binary | openssl
    /// enc -base64` (tests/data/README.md).
    const FINGERPRINT: &str = "SHA256:VJko0EMUB8hCv9GV4Shi3rvtPMfkVxu7DcCOkElxIho=";

    #[test]
    fn fingerprints_match_openssl() {
        assert_eq!(read(KEY, None).unwrap().fingerprint(), FINGERPRINT);
        assert_eq!(
            read(OTHER, None).unwrap().fingerprint(),
            "SHA256:1juZIRfvm9lzXIAOplstCUepCA5HSHJV5n6DkwnZTPI="
        );
    }

    #[test]
    fn encrypted_keys_decrypt_to_the_same_key() {
        let key = read(ENCRYPTED, Some(PASSPHRASE)).unwrap();
        assert_eq!(key.fingerprint(), FINGERPRINT);
        assert!(key.pem().starts_with("-----BEGIN PRIVATE KEY-----\n"));
        assert_eq!(read(key.pem(), None).unwrap().fingerprint(), FINGERPRINT);
        assert_eq!(read(ENCRYPTED, None).unwrap_err(), KeyError::PassphraseMissing);
        assert!(matches!(read(ENCRYPTED, Some(b"wrong")), Err(KeyError::Decrypt { .. })));
        assert_eq!(read(KEY, Some(PASSPHRASE)).unwrap_err(), KeyError::PassphraseUnexpected);
    }

    #[test]
    fn escaped_line_breaks_are_read() {
        let one_line = KEY.replace('\n', "\\n");
        assert_eq!(read(&one_line, None).unwrap().fingerprint(), FINGERPRINT);
    }

    #[test]
    fn other_keys_are_refused_with_what_to_do() {
        let pkcs1 = read(PKCS1, None).unwrap_err();
        assert_eq!(pkcs1, KeyError::Pkcs1);
        assert!(pkcs1.to_string().contains(
            "openssl pkcs8 -topk8 -inform PEM -outform PEM -in existing_key.pem -out new_key.p8 -nocrypt"
        ));
        assert_eq!(read(EC, None).unwrap_err(), KeyError::NotRsa);
        assert_eq!(read("not a key", None).unwrap_err(), KeyError::NotPkcs8 { label: None });
        assert_eq!(
            read("-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----", None)
                .unwrap_err(),
            KeyError::NotPkcs8 { label: Some("OPENSSH PRIVATE KEY".into()) }
        );
        let truncated = &KEY[..KEY.len() / 2];
        assert!(matches!(read(truncated, None), Err(KeyError::Malformed { .. })));
    }

    #[test]
    fn errors_and_debug_never_show_key_material() {
        let body_line = KEY.lines().nth(1).unwrap();
        let key = read(KEY, None).unwrap();
        let texts = [
            format!("{key:?}"),
            read(ENCRYPTED, Some(b"not-the-passphrase-9f2c")).unwrap_err().to_string(),
            read(&KEY[..KEY.len() / 2], None).unwrap_err().to_string(),
            read(PKCS1, None).unwrap_err().to_string(),
        ];
        for text in texts {
            assert!(!text.contains(&body_line[..20]), "{text}");
            assert!(!text.contains("9f2c") && !text.contains("PRIVATE KEY-----\nMII"), "{text}");
        }
    }
}
