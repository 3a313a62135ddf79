//! 公開鍵認証: `X-sws-signature` is base64 of RSA PKCS#1 v1.5 *encryption* of
//! `<sellerId>:<unix seconds>` with the store's public key; a fresh one for every request.

use super::YahooError;
use base64::Engine;
use rsa::pkcs8::DecodePublicKey;
use rsa::{Pkcs1v15Encrypt, RsaPublicKey};

#[derive(Debug, Clone)]
pub struct PublicKey {
    key: RsaPublicKey,
    pub version: String,
}

impl PublicKey {
    /// From PEM text (`-----BEGIN PUBLIC KEY-----`), or a path to a file holding it.
    pub fn load(pem_or_path: &str, version: &str) -> Result<Self, YahooError> {
        let pem = if pem_or_path.trim_start().starts_with("-----BEGIN") {
            pem_or_path.to_owned()
        } else {
            std::fs::read_to_string(pem_or_path)
                .map_err(|e| YahooError::Key(format!("cannot read {pem_or_path}: {e}")))?
        };
        let key = RsaPublicKey::from_public_key_pem(pem.trim())
            .map_err(|e| YahooError::Key(format!("not an RSA public key in PEM form: {e}")))?;
        Ok(Self { key, version: version.to_owned() })
    }

    pub fn signature(&self, seller_id: &str, unix_seconds: i64) -> Result<String, YahooError> {
        let plaintext = format!("{seller_id}:{unix_seconds}");
        let encrypted = self
            .key
            .encrypt(&mut rsa::rand_core::OsRng, Pkcs1v15Encrypt, plaintext.as_bytes())
            .map_err(|e| YahooError::Key(format!("encrypting the signature: {e}")))?;
        Ok(base64::engine::general_purpose::STANDARD.encode(encrypted))
    }
}
