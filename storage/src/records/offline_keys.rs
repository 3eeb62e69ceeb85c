//! The keys that sign offline tokens: one set per vendor.
use serde::{Deserialize, Serialize};

use super::SealedSecret;
use crate::Timestamp;

/// One vendor's Ed25519 keys for offline tokens: the key that signs now and the
/// previous ones that stay published until the last token each signed has expired.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OfflineKeySetRecord {
    /// The vendor.
    pub vendor_id: String,
    /// Oldest first; the last one is the signing key, the others were rotated out.
    pub keys: Vec<OfflineKeyRecord>,
}
super::record!(OfflineKeySetRecord, "offline token keys", version = 1);

/// One Ed25519 key pair of a [`OfflineKeySetRecord`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OfflineKeyRecord {
    /// Key id (`kid` in token headers and the JWKS), unique across vendors.
    pub kid: String,
    /// The public key (32 bytes, RFC 8032).
    pub public_key: [u8; 32],
    /// The key pair's PKCS#8 document, sealed with the server key; dropped once the key
    /// is rotated out (it signs nothing any more).
    pub private_key: Option<SealedSecret>,
    /// When it was created.
    pub created_at: Timestamp,
    /// When a rotation replaced it as the signing key.
    pub retired_at: Option<Timestamp>,
    /// No token it signed expires after this instant: it stays published until then.
    pub published_until: Option<Timestamp>,
}
