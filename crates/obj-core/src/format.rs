//! On-disk constants, the file header (meta page) and page checksums.
//!
//! The byte layout is documented in `docs/format.md`; this module is its single
//! implementation. All integers are little-endian except B-tree keys, which are compared as
//! raw bytes (document ids are stored big-endian so byte order equals id order).

use crate::error::{Error, Result};

/// First 8 bytes of every obj database file.
pub const MAGIC: [u8; 8] = *b"\x89OBJdb\r\n";
/// Current on-disk format version, the one every commit writes. See "Version history" in
/// `docs/format.md`.
pub const FORMAT_VERSION: u32 = 4;
/// Oldest format version this build opens (a commit then writes the current one).
pub const MIN_FORMAT_VERSION: u32 = 1;
pub const MIN_PAGE_SIZE: u32 = 4096;
pub const MAX_PAGE_SIZE: u32 = 65536;
pub const DEFAULT_PAGE_SIZE: u32 = 4096;

/// Bytes at the end of every page holding its CRC32.
pub const PAGE_TRAILER: usize = 4;

/// Required feature bit: some payloads are lz4-compressed.
pub const FEATURE_LZ4: u64 = 1 << 0;

/// Required feature bit: pages are encrypted (see `cipher.rs`).
pub const FEATURE_ENCRYPTION: u64 = 1 << 1;

/// Required feature bit: the database keeps a change log, and every commit must append
/// its record (format 4; see `changelog.rs`).
pub const FEATURE_CHANGES: u64 = 1 << 2;

/// Feature bits this build understands. A required bit outside this set refuses to open.
pub const KNOWN_REQUIRED_FEATURES: u64 = (if cfg!(feature = "compression") {
    FEATURE_LZ4
} else {
    0
}) | (if cfg!(feature = "encryption") {
    FEATURE_ENCRYPTION
} else {
    0
}) | FEATURE_CHANGES;

/// Bytes at the end of each physical page that the engine's logical page does not use.
pub fn reserved_bytes(required_features: u64) -> usize {
    if required_features & FEATURE_ENCRYPTION != 0 {
        crate::cipher::RESERVED
    } else {
        0
    }
}
/// Names of required feature bits, for messages (bit index → name).
pub const REQUIRED_FEATURE_NAMES: &[&str] = &[
    "compression-lz4",
    "encryption-xchacha20poly1305",
    "change-log",
];

/// Page kinds, stored in byte 0 of every page except the meta page (which starts with MAGIC).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum PageKind {
    Branch = 2,
    Leaf = 3,
    Overflow = 4,
    FreeTrunk = 5,
}

impl PageKind {
    pub fn of(byte: u8) -> Option<Self> {
        match byte {
            2 => Some(Self::Branch),
            3 => Some(Self::Leaf),
            4 => Some(Self::Overflow),
            5 => Some(Self::FreeTrunk),
            _ => None,
        }
    }
}

// Meta page (page 0) field offsets, chained so each follows the previous one.
pub const META_MAGIC: usize = 0;
pub const META_VERSION: usize = META_MAGIC + 8;
pub const META_PAGE_SIZE: usize = META_VERSION + 4;
pub const META_REQUIRED: usize = META_PAGE_SIZE + 4;
pub const META_OPTIONAL: usize = META_REQUIRED + 8;
pub const META_PAGE_COUNT: usize = META_OPTIONAL + 8;
pub const META_FREE_HEAD: usize = META_PAGE_COUNT + 8;
pub const META_FREE_COUNT: usize = META_FREE_HEAD + 8;
pub const META_CATALOG_ROOT: usize = META_FREE_COUNT + 8;
pub const META_COMMIT_SEQ: usize = META_CATALOG_ROOT + 8;
pub const META_NEXT_COLLECTION: usize = META_COMMIT_SEQ + 8;
pub const META_DB_ID: usize = META_NEXT_COLLECTION + 8;
pub const META_WAL_GENERATION: usize = META_DB_ID + 8;
pub const META_KDF: usize = META_WAL_GENERATION + 8;
pub const META_KDF_SALT: usize = META_KDF + 8;
pub const META_KEY_CHECK: usize = META_KDF_SALT + 16;
pub const META_END: usize = META_KEY_CHECK + 16;

/// The database-wide state kept in page 0.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Meta {
    pub page_size: u32,
    pub required_features: u64,
    pub optional_features: u64,
    /// Pages in the database, page 0 included.
    pub page_count: u64,
    /// First freelist trunk page, 0 when the freelist is empty.
    pub free_head: u64,
    /// Free pages (trunk pages included).
    pub free_count: u64,
    pub catalog_root: u64,
    /// Number of the last commit; grows by one per commit.
    pub commit_seq: u64,
    pub next_collection_id: u64,
    /// Random identity chosen at creation; the WAL header repeats it, so a log left beside
    /// another database file is never replayed onto it.
    pub db_id: u64,
    /// WAL generation of the commit that wrote this header. The WAL that applies on top of
    /// the main file has this generation or the next one.
    pub wal_generation: u64,
    /// Encryption: how the key was derived (0 = not encrypted), the KDF salt, and a value
    /// only the right key reproduces.
    pub kdf: u8,
    pub kdf_salt: [u8; 16],
    pub key_check: [u8; 16],
}

impl Meta {
    pub fn new(page_size: u32) -> Self {
        Meta {
            page_size,
            required_features: 0,
            optional_features: 0,
            page_count: 2,
            free_head: 0,
            free_count: 0,
            catalog_root: 1,
            commit_seq: 0,
            next_collection_id: 1,
            db_id: 0,
            wal_generation: 0,
            kdf: 0,
            kdf_salt: [0; 16],
            key_check: [0; 16],
        }
    }

    /// Writes the meta fields into a page buffer (the checksum is set by `seal_page`).
    pub fn write_to(&self, page: &mut [u8]) {
        page[META_MAGIC..META_MAGIC + 8].copy_from_slice(&MAGIC);
        put_u32(page, META_VERSION, FORMAT_VERSION);
        put_u32(page, META_PAGE_SIZE, self.page_size);
        put_u64(page, META_REQUIRED, self.required_features);
        put_u64(page, META_OPTIONAL, self.optional_features);
        put_u64(page, META_PAGE_COUNT, self.page_count);
        put_u64(page, META_FREE_HEAD, self.free_head);
        put_u64(page, META_FREE_COUNT, self.free_count);
        put_u64(page, META_CATALOG_ROOT, self.catalog_root);
        put_u64(page, META_COMMIT_SEQ, self.commit_seq);
        put_u64(page, META_NEXT_COLLECTION, self.next_collection_id);
        put_u64(page, META_DB_ID, self.db_id);
        put_u64(page, META_WAL_GENERATION, self.wal_generation);
        page[META_KDF] = self.kdf;
        page[META_KDF_SALT..META_KDF_SALT + 16].copy_from_slice(&self.kdf_salt);
        page[META_KEY_CHECK..META_KEY_CHECK + 16].copy_from_slice(&self.key_check);
    }

    /// Parses a verified meta page.
    pub fn read_from(page: &[u8]) -> Result<Self> {
        check_header_prefix(page)?;
        let meta = Meta {
            page_size: get_u32(page, META_PAGE_SIZE),
            required_features: get_u64(page, META_REQUIRED),
            optional_features: get_u64(page, META_OPTIONAL),
            page_count: get_u64(page, META_PAGE_COUNT),
            free_head: get_u64(page, META_FREE_HEAD),
            free_count: get_u64(page, META_FREE_COUNT),
            catalog_root: get_u64(page, META_CATALOG_ROOT),
            commit_seq: get_u64(page, META_COMMIT_SEQ),
            next_collection_id: get_u64(page, META_NEXT_COLLECTION),
            db_id: get_u64(page, META_DB_ID),
            wal_generation: get_u64(page, META_WAL_GENERATION),
            kdf: page[META_KDF],
            kdf_salt: page[META_KDF_SALT..META_KDF_SALT + 16]
                .try_into()
                .unwrap_or_default(),
            key_check: page[META_KEY_CHECK..META_KEY_CHECK + 16]
                .try_into()
                .unwrap_or_default(),
        };
        if meta.page_size as usize != page.len() + reserved_bytes(meta.required_features) {
            return Err(Error::corrupt_page(
                0,
                "page size field disagrees with the page",
            ));
        }
        check_features(meta.required_features)?;
        if meta.page_count < 2
            || meta.catalog_root == 0
            || meta.catalog_root >= meta.page_count
            || meta.free_head >= meta.page_count
            || meta.free_count >= meta.page_count
        {
            return Err(Error::corrupt_page(0, "header fields out of range"));
        }
        Ok(meta)
    }
}

/// Checks the magic, version and page size at the start of a file; returns the page size.
pub fn check_header_prefix(head: &[u8]) -> Result<u32> {
    if head.len() < META_END || head[META_MAGIC..META_MAGIC + 8] != MAGIC {
        return Err(Error::corrupt("not an obj database (bad magic bytes)"));
    }
    let version = get_u32(head, META_VERSION);
    if !(MIN_FORMAT_VERSION..=FORMAT_VERSION).contains(&version) {
        return Err(Error::FeatureUnsupported(format!(
            "file format version {version} (this build reads versions {MIN_FORMAT_VERSION} to \
             {FORMAT_VERSION})"
        )));
    }
    let page_size = get_u32(head, META_PAGE_SIZE);
    if !valid_page_size(page_size) {
        return Err(Error::corrupt(format!(
            "invalid page size {page_size} in header"
        )));
    }
    check_features(get_u64(head, META_REQUIRED))?;
    Ok(page_size)
}

/// Refuses required feature bits this build does not implement, naming them.
pub fn check_features(required: u64) -> Result<()> {
    let unknown = required & !KNOWN_REQUIRED_FEATURES;
    if unknown == 0 {
        return Ok(());
    }
    let names: Vec<String> = (0..64)
        .filter(|bit| unknown & (1u64 << bit) != 0)
        .map(|bit| match REQUIRED_FEATURE_NAMES.get(bit) {
            Some(name) => format!("{name} (bit {bit})"),
            None => format!("unknown feature bit {bit}"),
        })
        .collect();
    Err(Error::FeatureUnsupported(format!(
        "the file requires {} which this build does not support",
        names.join(", ")
    )))
}

pub fn valid_page_size(size: u32) -> bool {
    size.is_power_of_two() && (MIN_PAGE_SIZE..=MAX_PAGE_SIZE).contains(&size)
}

/// CRC32 of a page: covers the page number (so a page written at the wrong place fails)
/// and every byte but the trailer.
pub fn page_checksum(page_no: u64, page: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(&page_no.to_le_bytes());
    h.update(&page[..page.len() - PAGE_TRAILER]);
    h.finalize()
}

/// Stores the checksum in the page trailer.
pub fn seal_page(page_no: u64, page: &mut [u8]) {
    let crc = page_checksum(page_no, page);
    let at = page.len() - PAGE_TRAILER;
    put_u32(page, at, crc);
}

/// Verifies the trailer checksum of a page read from disk.
pub fn verify_page(page_no: u64, page: &[u8]) -> Result<()> {
    let at = page.len() - PAGE_TRAILER;
    if get_u32(page, at) != page_checksum(page_no, page) {
        return Err(Error::corrupt_page(page_no, "checksum mismatch"));
    }
    Ok(())
}

#[inline]
pub fn get_u16(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}
#[inline]
pub fn get_u32(b: &[u8], at: usize) -> u32 {
    let mut x = [0u8; 4];
    x.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(x)
}
#[inline]
pub fn get_u64(b: &[u8], at: usize) -> u64 {
    let mut x = [0u8; 8];
    x.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(x)
}
#[inline]
pub fn put_u16(b: &mut [u8], at: usize, v: u16) {
    b[at..at + 2].copy_from_slice(&v.to_le_bytes());
}
#[inline]
pub fn put_u32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
}
#[inline]
pub fn put_u64(b: &mut [u8], at: usize, v: u64) {
    b[at..at + 8].copy_from_slice(&v.to_le_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meta_round_trip_and_checksum() {
        let mut page = vec![0u8; 4096];
        let mut meta = Meta::new(4096);
        meta.page_count = 10;
        meta.free_head = 3;
        meta.free_count = 2;
        meta.write_to(&mut page);
        seal_page(0, &mut page);
        verify_page(0, &page).unwrap();
        assert_eq!(Meta::read_from(&page).unwrap(), meta);
        page[100] ^= 1;
        assert!(matches!(verify_page(0, &page), Err(Error::Corruption(_))));
        // A page verified under another number fails too.
        page[100] ^= 1;
        assert!(verify_page(1, &page).is_err());
    }

    #[test]
    fn unknown_required_feature_is_named() {
        let err = check_features(1 << 40).unwrap_err();
        assert!(
            matches!(&err, Error::FeatureUnsupported(m) if m.contains("bit 40")),
            "{err}"
        );
        // Both named features are known to a default build.
        check_features(FEATURE_LZ4 | FEATURE_ENCRYPTION).unwrap();
    }

    #[test]
    fn rejects_foreign_files() {
        let junk = vec![7u8; 4096];
        assert!(matches!(
            check_header_prefix(&junk),
            Err(Error::Corruption(_))
        ));
        assert!(matches!(
            check_header_prefix(b"short"),
            Err(Error::Corruption(_))
        ));
    }
}
