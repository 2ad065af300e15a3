//! The header in front of every stored document.
//!
//! Layout (see `docs/format.md`, "Documents"): `kind u8`, `flags u8`, `type_version` varint,
//! `collection_id` varint, the expiry time as a varint when flagged, then the payload. The kind says how to read the payload: raw
//! bytes the caller encoded, the self-describing Value codec, or the schema-driven Dynamic
//! codec of a typed document (whose schema is found by collection and type version).

use crate::codec::wire::{get_varint, put_varint};
use crate::error::{Error, Result};

/// How a document's payload is encoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum DocKind {
    /// Bytes chosen by the caller.
    Raw = 0,
    /// Self-describing Value codec (dict-native documents).
    Value = 1,
    /// Positional Dynamic codec driven by the persisted schema.
    Typed = 2,
}

impl DocKind {
    /// The kind's name: `"raw"`, `"value"` or `"typed"`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Raw => "raw",
            Self::Value => "value",
            Self::Typed => "typed",
        }
    }

    fn of(byte: u8) -> Option<Self> {
        match byte {
            0 => Some(Self::Raw),
            1 => Some(Self::Value),
            2 => Some(Self::Typed),
            _ => None,
        }
    }
}

/// Header flag: the payload is lz4-compressed (block format, uncompressed size first).
pub const FLAG_COMPRESSED: u8 = 1;

/// Header flag (format 3): an expiry time follows the collection id, in microseconds since
/// the Unix epoch; from then on the document is gone for every table read.
pub const FLAG_EXPIRES: u8 = 2;

/// Payloads at least this long are compressed when the database has compression on.
pub const COMPRESS_MIN: usize = 256;

/// Compresses a payload if that makes it smaller.
pub fn compress(payload: &[u8]) -> Option<Vec<u8>> {
    #[cfg(feature = "compression")]
    {
        let c = lz4_flex::block::compress_prepend_size(payload);
        (c.len() < payload.len()).then_some(c)
    }
    #[cfg(not(feature = "compression"))]
    {
        let _ = payload;
        None
    }
}

/// The stored payload bytes as the codecs see them (decompressed when flagged).
pub fn expand<'a>(header: &DocHeader, stored: &'a [u8]) -> Result<std::borrow::Cow<'a, [u8]>> {
    if header.flags & FLAG_COMPRESSED == 0 {
        return Ok(std::borrow::Cow::Borrowed(stored));
    }
    #[cfg(feature = "compression")]
    {
        // lz4 expands at most ~255x; a larger claimed size is damage, not a reason to allocate.
        let claimed = stored
            .get(..4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as u64);
        match claimed {
            Some(n) if n <= 255 * stored.len() as u64 + 64 => {}
            _ => return Err(Error::corrupt("compressed payload has an impossible size")),
        }
        lz4_flex::block::decompress_size_prepended(stored)
            .map(std::borrow::Cow::Owned)
            .map_err(|e| Error::corrupt(format!("compressed payload is damaged: {e}")))
    }
    #[cfg(not(feature = "compression"))]
    Err(Error::FeatureUnsupported(
        "compression-lz4 (this build has no compression)".into(),
    ))
}

/// Metadata stored with each document.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct DocHeader {
    /// How the payload is encoded.
    pub kind: DocKind,
    /// Flag bits (`FLAG_COMPRESSED`).
    pub flags: u8,
    /// Schema version of a typed document (0 for raw and Value documents).
    pub type_version: u32,
    /// The collection the document was written to.
    pub collection_id: u64,
    /// When the document expires (microseconds since the Unix epoch), if it does. Encoded
    /// only with [`FLAG_EXPIRES`], which this field sets and clears.
    pub expires_at: Option<u64>,
}

impl DocHeader {
    /// The header of a raw document of collection `collection_id`.
    pub fn raw(collection_id: u64) -> Self {
        DocHeader {
            kind: DocKind::Raw,
            flags: 0,
            type_version: 0,
            collection_id,
            expires_at: None,
        }
    }

    /// Appends the encoded header.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        out.push(self.kind as u8);
        let flags = self.flags & !FLAG_EXPIRES;
        out.push(if self.expires_at.is_some() {
            flags | FLAG_EXPIRES
        } else {
            flags
        });
        put_varint(out, u64::from(self.type_version));
        put_varint(out, self.collection_id);
        if let Some(at) = self.expires_at {
            put_varint(out, at);
        }
    }

    /// Parses a header; returns it and its length in bytes.
    pub fn decode(bytes: &[u8]) -> Result<(DocHeader, usize)> {
        let bad = || Error::corrupt("document header is damaged");
        let kind = DocKind::of(*bytes.first().ok_or_else(bad)?).ok_or_else(bad)?;
        let flags = *bytes.get(1).ok_or_else(bad)?;
        let mut at = 2;
        let version = get_varint(bytes, &mut at).ok_or_else(bad)?;
        let collection_id = get_varint(bytes, &mut at).ok_or_else(bad)?;
        let type_version = u32::try_from(version).map_err(|_| bad())?;
        let expires_at = if flags & FLAG_EXPIRES != 0 {
            Some(get_varint(bytes, &mut at).ok_or_else(bad)?)
        } else {
            None
        };
        Ok((
            DocHeader {
                kind,
                flags,
                type_version,
                collection_id,
                expires_at,
            },
            at,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trip() {
        for h in [
            DocHeader::raw(1),
            DocHeader {
                kind: DocKind::Typed,
                flags: 1,
                type_version: 70_000,
                collection_id: u64::MAX,
                expires_at: None,
            },
            DocHeader {
                kind: DocKind::Value,
                flags: 1 | FLAG_EXPIRES,
                type_version: 0,
                collection_id: 7,
                expires_at: Some(1_767_225_600_000_000),
            },
        ] {
            let mut buf = Vec::new();
            h.encode_into(&mut buf);
            buf.extend_from_slice(b"payload");
            let (back, len) = DocHeader::decode(&buf).unwrap();
            assert_eq!(back, h);
            assert_eq!(&buf[len..], b"payload");
        }
        assert!(DocHeader::decode(&[9, 0, 0, 0]).is_err());
        assert!(DocHeader::decode(&[0, 0, 0x80]).is_err());
        assert!(DocHeader::decode(&[]).is_err());
        // A flagged expiry that is missing is damage.
        assert!(DocHeader::decode(&[1, FLAG_EXPIRES, 0, 7]).is_err());
    }

    #[test]
    fn compression_round_trip_and_damage() {
        let payload = b"abcdefgh".repeat(100);
        let c = compress(&payload).unwrap();
        assert!(c.len() < payload.len());
        let h = DocHeader {
            kind: DocKind::Raw,
            flags: FLAG_COMPRESSED,
            type_version: 0,
            collection_id: 1,
            expires_at: None,
        };
        assert_eq!(&*expand(&h, &c).unwrap(), &payload[..]);
        let mut bad = c.clone();
        bad[0..4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(expand(&h, &bad), Err(Error::Corruption(_))));
        // Truncations never panic (the page checksum is what detects them on disk).
        for cut in 0..c.len() {
            let _ = expand(&h, &c[..cut]);
        }
        assert!(compress(b"xyz").is_none() || compress(b"xyz").unwrap().len() < 3);
    }
}
