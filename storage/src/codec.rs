//! The one place that knows the on-disk encoding.
//!
//! Every stored value is `[schema version byte] ++ bincode(standard config, value)`.
//! A record type names its current version; decoding an older version goes through
//! [`Record::upgrade`], so a newer binary reads an older store. bincode is pinned
//! (`=2.0.1`) because its successor releases are not usable; keeping the codec here means
//! a replacement touches one file.
use serde::Serialize;
use serde::de::DeserializeOwned;
use thiserror::Error;

/// A value that can be stored.
pub trait Record: Serialize + DeserializeOwned {
    /// Human name used in error messages.
    const NAME: &'static str;
    /// The schema version this build writes.
    const VERSION: u8;

    /// Decode a value written with an older schema `version`.
    fn upgrade(version: u8, _payload: &[u8]) -> Result<Self, CodecError> {
        Err(CodecError::UnknownVersion {
            record: Self::NAME,
            version,
        })
    }
}

/// Why a stored value could not be decoded.
#[derive(Debug, Error)]
pub enum CodecError {
    /// The value is empty: not even a version byte.
    #[error("stored {record} is empty")]
    Empty {
        /// Record name.
        record: &'static str,
    },
    /// The schema version is newer than this build or was never defined.
    #[error(
        "stored {record} has schema version {version}, which this build cannot read; \
         run the permetrix version that wrote it or restore a backup"
    )]
    UnknownVersion {
        /// Record name.
        record: &'static str,
        /// Version byte found.
        version: u8,
    },
    /// bincode rejected the payload.
    #[error("stored {record} is corrupt: {message}")]
    Corrupt {
        /// Record name.
        record: &'static str,
        /// bincode's description.
        message: String,
    },
}

fn config() -> bincode::config::Configuration {
    bincode::config::standard()
}

/// Encodes `value` with its schema version in front.
pub fn encode<R: Record>(value: &R) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    out.push(R::VERSION);
    // Encoding plain serde structs into a Vec cannot fail: no maps with non-string
    // keys, no `deserialize_any`, and writing to a Vec is infallible.
    if let Err(e) = bincode::serde::encode_into_std_write(value, &mut out, config()) {
        unreachable_encode(R::NAME, &e);
    }
    out
}

#[cold]
fn unreachable_encode(name: &str, e: &bincode::error::EncodeError) -> ! {
    panic!("encoding {name} into memory failed: {e}")
}

/// Decodes a value written by [`encode`] (of this or an older schema version).
pub fn decode<R: Record>(bytes: &[u8]) -> Result<R, CodecError> {
    let (&version, payload) = bytes
        .split_first()
        .ok_or(CodecError::Empty { record: R::NAME })?;
    if version == R::VERSION {
        decode_payload(payload, R::NAME)
    } else {
        R::upgrade(version, payload)
    }
}

/// Decodes a bare bincode payload; for [`Record::upgrade`] implementations reading an
/// older struct.
pub fn decode_payload<T: DeserializeOwned>(
    payload: &[u8],
    record: &'static str,
) -> Result<T, CodecError> {
    bincode::serde::decode_from_slice(payload, config())
        .map(|(value, _)| value)
        .map_err(|e| CodecError::Corrupt {
            record,
            message: e.to_string(),
        })
}
