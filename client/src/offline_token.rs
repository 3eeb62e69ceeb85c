//! Offline tokens: the signed proof of an offline checkout, verifiable without the
//! broker.
//!
//! A JWT (RFC 7519) signed with Ed25519 (`EdDSA`, RFC 8037), header
//! `{"alg":"EdDSA","typ":"JWT","kid":…}`, claims [`Claims`]. The broker signs with
//! [`SigningKey`] and publishes the public halves as a JWKS (RFC 7517) of [`jwk`]s;
//! [`verify`] checks a token against such a set, as `permetrix token verify` does and
//! as a vendor's licence check may (any standard JWT library will do: see
//! `docs/operations.md`). Encoding and validation are `jsonwebtoken`'s, the signatures
//! ring's (`provider`).
mod provider;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::jwk::{
    AlgorithmParameters, CommonParameters, EllipticCurve, Jwk, KeyAlgorithm,
    OctetKeyPairParameters, OctetKeyPairType, PublicKeyUse,
};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use ring::signature::{Ed25519KeyPair, KeyPair};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

pub use jsonwebtoken::jwk::JwkSet;

/// What an offline token says: who may use which tool, of which tenant and vendor,
/// until when.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The vendor host that issued it (`https://vendor.<base domain>`).
    pub iss: String,
    /// The user who borrowed.
    pub sub: String,
    /// The vendor whose key signed it; its keys are the JWKS at
    /// `<iss>/.well-known/jwks.json?vendor=<vendor>`.
    pub vendor: String,
    /// The tenant (customer) the seat belongs to.
    pub tenant: String,
    /// The tool (product name) checked out.
    pub tool: String,
    /// The product id of the tool.
    pub product_id: String,
    /// The borrow: returning it early frees the seat (the token itself stays valid
    /// until `exp`).
    pub borrow_id: String,
    /// The client machine's identifier, as the borrow gave it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<String>,
    /// Issued at (Unix seconds): when the seat was checked out.
    pub iat: u64,
    /// Expires at (Unix seconds): the end of the checkout.
    pub exp: u64,
}

/// A key could not be made or read.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The system's random number generator failed.
    #[error("the random number generator failed")]
    Random,
    /// The bytes are no Ed25519 key pair (a PKCS#8 document, RFC 5958).
    #[error("not an Ed25519 key pair in PKCS#8 form")]
    Malformed,
    /// Encoding a token failed.
    #[error("signing the token failed: {0}")]
    Signing(String),
}

/// A new key pair, before it is stored.
pub struct GeneratedKey {
    /// The key pair as a PKCS#8 document: the secret to seal.
    pub pkcs8: Vec<u8>,
    /// The public key.
    pub public_key: [u8; 32],
}

/// Makes a new Ed25519 key pair from the operating system's randomness.
pub fn generate_key() -> Result<GeneratedKey, KeyError> {
    let rng = ring::rand::SystemRandom::new();
    let doc = Ed25519KeyPair::generate_pkcs8(&rng).map_err(|_| KeyError::Random)?;
    let pkcs8 = doc.as_ref().to_vec();
    let public_key = public_key_of(&pkcs8)?;
    Ok(GeneratedKey { pkcs8, public_key })
}

fn public_key_of(pkcs8: &[u8]) -> Result<[u8; 32], KeyError> {
    let pair =
        Ed25519KeyPair::from_pkcs8_maybe_unchecked(pkcs8).map_err(|_| KeyError::Malformed)?;
    pair.public_key()
        .as_ref()
        .try_into()
        .map_err(|_| KeyError::Malformed)
}

/// A key that signs tokens, ready in memory (unsealed once, used for many tokens).
pub struct SigningKey {
    kid: String,
    key: EncodingKey,
    public_key: [u8; 32],
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SigningKey({})", self.kid)
    }
}

impl SigningKey {
    /// The key pair `pkcs8` under the id `kid`.
    pub fn from_pkcs8(kid: &str, pkcs8: &[u8]) -> Result<Self, KeyError> {
        Ok(SigningKey {
            kid: kid.to_owned(),
            public_key: public_key_of(pkcs8)?,
            key: EncodingKey::from_ed_der(pkcs8),
        })
    }

    /// The key id.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The public key.
    pub fn public_key(&self) -> &[u8; 32] {
        &self.public_key
    }

    /// A token carrying `claims`, signed with this key.
    pub fn sign(&self, claims: &Claims) -> Result<String, KeyError> {
        provider::install();
        let header = Header {
            kid: Some(self.kid.clone()),
            ..Header::new(Algorithm::EdDSA)
        };
        jsonwebtoken::encode(&header, claims, &self.key)
            .map_err(|e| KeyError::Signing(e.to_string()))
    }
}

/// The JWK (RFC 7517, RFC 8037) of an Ed25519 public key:
/// `{"kty":"OKP","crv":"Ed25519","x":…,"kid":…,"alg":"EdDSA","use":"sig"}`.
pub fn jwk(kid: &str, public_key: &[u8; 32]) -> Jwk {
    Jwk {
        common: CommonParameters {
            public_key_use: Some(PublicKeyUse::Signature),
            key_algorithm: Some(KeyAlgorithm::EdDSA),
            key_id: Some(kid.to_owned()),
            ..CommonParameters::default()
        },
        algorithm: AlgorithmParameters::OctetKeyPair(OctetKeyPairParameters {
            key_type: OctetKeyPairType::OctetKeyPair,
            curve: EllipticCurve::Ed25519,
            x: URL_SAFE_NO_PAD.encode(public_key),
        }),
    }
}

/// Why a token is not accepted.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// Not a JWT, or not one of ours (another algorithm, no `kid`, missing claims).
    #[error("the token is malformed: {0}")]
    Malformed(String),
    /// No key of the set has the token's `kid`: another vendor's token, a key that is
    /// no longer published, or the wrong JWKS.
    #[error(
        "no key in the JWKS has the token's kid '{0}' (another vendor's token, or a key no longer published)"
    )]
    UnknownKey(String),
    /// The signature does not match: the token was changed, or signed by another key.
    #[error("the signature does not verify: the token was altered or signed by another key")]
    BadSignature,
    /// The checkout has ended.
    #[error("the token expired at {exp} (Unix seconds)")]
    Expired {
        /// The token's `exp`.
        exp: u64,
    },
    /// The token says it is not valid yet (`nbf`).
    #[error("the token is not valid yet (nbf is in the future)")]
    NotYetValid,
    /// The token was issued for another vendor than the one expected.
    #[error("the token was issued for vendor '{found}', not '{expected}'")]
    WrongVendor {
        /// The token's `vendor` claim.
        found: String,
        /// The vendor expected.
        expected: String,
    },
}

/// Checks `token` against the public keys `keys` by this machine's clock: see
/// [`verify_at`].
pub fn verify(token: &str, keys: &JwkSet, vendor: Option<&str>) -> Result<Claims, VerifyError> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    verify_at(token, keys, vendor, now)
}

/// Checks `token` against the public keys `keys` at `now` (Unix seconds): the key
/// named by its `kid` must have signed it, `exp` must be after `now` and `nbf` (if
/// present) not after it, without leeway; with `vendor`, the token must be that
/// vendor's. Returns the claims. The times are checked here rather than by
/// `jsonwebtoken` so that a verifier (and a test with a manual clock) can say when.
pub fn verify_at(
    token: &str,
    keys: &JwkSet,
    vendor: Option<&str>,
    now: u64,
) -> Result<Claims, VerifyError> {
    provider::install();
    let header =
        jsonwebtoken::decode_header(token).map_err(|e| VerifyError::Malformed(e.to_string()))?;
    if header.alg != Algorithm::EdDSA {
        return Err(VerifyError::Malformed(format!(
            "the algorithm is {:?}, not EdDSA",
            header.alg
        )));
    }
    let kid = header
        .kid
        .ok_or_else(|| VerifyError::Malformed("the header names no kid".into()))?;
    let jwk = keys
        .find(&kid)
        .ok_or_else(|| VerifyError::UnknownKey(kid.clone()))?;
    if !matches!(&jwk.algorithm, AlgorithmParameters::OctetKeyPair(p) if p.curve == EllipticCurve::Ed25519)
    {
        return Err(VerifyError::UnknownKey(kid));
    }
    let key = DecodingKey::from_jwk(jwk).map_err(|e| VerifyError::Malformed(e.to_string()))?;
    let mut validation = Validation::new(Algorithm::EdDSA);
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.set_required_spec_claims(&["exp", "iat", "iss", "sub"]);
    let decoded = jsonwebtoken::decode::<Timed>(token, &key, &validation)
        .map_err(|e| match e.kind() {
            ErrorKind::InvalidSignature => VerifyError::BadSignature,
            _ => VerifyError::Malformed(e.to_string()),
        })?
        .claims;
    let claims = decoded.claims;
    if claims.exp <= now {
        return Err(VerifyError::Expired { exp: claims.exp });
    }
    if decoded.nbf.is_some_and(|nbf| nbf > now) {
        return Err(VerifyError::NotYetValid);
    }
    match vendor {
        Some(expected) if claims.vendor != expected => Err(VerifyError::WrongVendor {
            found: claims.vendor,
            expected: expected.to_owned(),
        }),
        _ => Ok(claims),
    }
}

/// The claims with the optional `nbf` our tokens do not carry but a verifier honours.
#[derive(Deserialize)]
struct Timed {
    #[serde(flatten)]
    claims: Claims,
    #[serde(default)]
    nbf: Option<u64>,
}

#[cfg(test)]
mod tests;
