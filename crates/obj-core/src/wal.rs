//! The write-ahead log: a header and a sequence of page-image frames with a chained
//! checksum. Layout and protocol: `docs/format.md` ("WAL").

use crate::backend::StorageBackend;
use crate::error::{Error, Result};
use crate::format::{get_u32, get_u64, put_u32, put_u64, PAGE_TRAILER};
use std::hash::{BuildHasher, Hasher};

pub const WAL_MAGIC: [u8; 8] = *b"objWAL\x00\x01";
pub const WAL_VERSION: u32 = 1;
pub const WAL_HEADER_SIZE: usize = 64;
pub const FRAME_HEADER_SIZE: usize = 32;

// Header field offsets.
const H_MAGIC: usize = 0;
const H_VERSION: usize = H_MAGIC + 8;
const H_PAGE_SIZE: usize = H_VERSION + 4;
const H_GENERATION: usize = H_PAGE_SIZE + 4;
const H_SALT1: usize = H_GENERATION + 8;
const H_SALT2: usize = H_SALT1 + 4;
const H_DB_ID: usize = H_SALT2 + 4;
const H_CHECKSUM: usize = WAL_HEADER_SIZE - 4;

// Frame header field offsets.
const F_PAGE: usize = 0;
const F_COMMIT: usize = F_PAGE + 8;
const F_SALT1: usize = F_COMMIT + 8;
const F_SALT2: usize = F_SALT1 + 4;
const F_CHECKSUM: usize = F_SALT2 + 4;

/// One recovered commit: its pages and the database size (in pages) it committed.
pub struct RecoveredCommit {
    pub pages: Vec<(u64, Vec<u8>)>,
    pub db_pages: u64,
}

/// Append state of the log. Only the writer (or open/checkpoint under the writer lock)
/// touches it.
pub struct Wal {
    backend: Box<dyn StorageBackend>,
    page_size: usize,
    db_id: u64,
    generation: u64,
    salt1: u32,
    salt2: u32,
    /// Byte offset where the next frame goes (just after the last committed frame).
    end: u64,
    /// Checksum chain value after the last committed frame.
    chain: u32,
    /// Committed frames currently in the log.
    frames: u64,
}

impl Wal {
    /// Opens the log and returns the commits it holds, oldest first. A torn or stale tail is
    /// ignored; a damaged header in front of frames is corruption. `owner` is the main file's
    /// identity and WAL generation: a log that belongs to another database, or to an older or
    /// newer state of this one, is not replayed (and is reset when `writable`). With `owner`
    /// unknown (the main header is damaged) the log is trusted as it is.
    pub fn open(
        backend: Box<dyn StorageBackend>,
        page_size: usize,
        writable: bool,
        owner: Option<(u64, u64)>,
    ) -> Result<(Wal, Vec<RecoveredCommit>)> {
        let len = backend.len()?;
        let frame_size = (FRAME_HEADER_SIZE + page_size) as u64;
        let (db_id, main_generation) = owner.unwrap_or((0, 0));
        let mut wal = Wal {
            backend,
            page_size,
            db_id,
            generation: main_generation,
            salt1: 0,
            salt2: 0,
            end: WAL_HEADER_SIZE as u64,
            chain: 0,
            frames: 0,
        };
        if len < WAL_HEADER_SIZE as u64 {
            if writable {
                wal.reset(true)?;
            }
            return Ok((wal, Vec::new()));
        }
        let data = {
            let mut buf =
                vec![0u8; usize::try_from(len).map_err(|_| Error::corrupt("WAL too large"))?];
            wal.backend.read_at(0, &mut buf)?;
            buf
        };
        let header = &data[..WAL_HEADER_SIZE];
        let header_ok = header[H_MAGIC..H_MAGIC + 8] == WAL_MAGIC
            && get_u32(header, H_CHECKSUM) == crc32fast::hash(&header[..H_CHECKSUM]);
        if !header_ok {
            if len >= WAL_HEADER_SIZE as u64 + frame_size {
                return Err(Error::corrupt("WAL header is damaged but frames follow it"));
            }
            if writable {
                wal.reset(true)?;
            }
            return Ok((wal, Vec::new()));
        }
        if get_u32(header, H_VERSION) != WAL_VERSION {
            return Err(Error::FeatureUnsupported(format!(
                "WAL format version {} (this build reads {WAL_VERSION})",
                get_u32(header, H_VERSION)
            )));
        }
        if get_u32(header, H_PAGE_SIZE) as usize != page_size {
            return Err(Error::corrupt(
                "WAL page size differs from the database page size",
            ));
        }
        let generation = get_u64(header, H_GENERATION);
        let header_db = get_u64(header, H_DB_ID);
        if let Some((db_id, main_generation)) = owner {
            let ours = header_db == db_id
                && (generation == main_generation
                    || main_generation.checked_add(1) == Some(generation));
            if !ours {
                if writable {
                    wal.reset(true)?;
                }
                return Ok((wal, Vec::new()));
            }
        }
        wal.db_id = header_db;
        wal.generation = generation;
        wal.salt1 = get_u32(header, H_SALT1);
        wal.salt2 = get_u32(header, H_SALT2);
        wal.chain = get_u32(header, H_CHECKSUM);

        let mut commits = Vec::new();
        let mut pending: Vec<(u64, Vec<u8>)> = Vec::new();
        let mut chain = wal.chain;
        let mut off = WAL_HEADER_SIZE;
        let mut frames_in_pending = 0u64;
        while off as u64 + frame_size <= len {
            let frame = &data[off..off + frame_size as usize];
            let (hdr, page) = frame.split_at(FRAME_HEADER_SIZE);
            if get_u32(hdr, F_SALT1) != wal.salt1 || get_u32(hdr, F_SALT2) != wal.salt2 {
                break;
            }
            let next = frame_checksum(chain, hdr, page);
            if next != get_u32(hdr, F_CHECKSUM) {
                break;
            }
            chain = next;
            frames_in_pending += 1;
            pending.push((get_u64(hdr, F_PAGE), page.to_vec()));
            off += frame_size as usize;
            let db_pages = get_u64(hdr, F_COMMIT);
            if db_pages != 0 {
                if let Some((no, _)) = pending.iter().find(|(no, _)| *no >= db_pages) {
                    return Err(Error::corrupt(format!(
                        "WAL frame for page {no} lies beyond its commit's size of {db_pages} pages"
                    )));
                }
                commits.push(RecoveredCommit {
                    pages: std::mem::take(&mut pending),
                    db_pages,
                });
                wal.end = off as u64;
                wal.chain = chain;
                wal.frames += frames_in_pending;
                frames_in_pending = 0;
            }
        }
        if writable {
            // Drop the torn or unacknowledged tail and make what is left durable: a later
            // commit then never lands beside stale frames that could complete a lost one,
            // and never builds on bytes that only the OS cache held.
            if len > wal.end {
                wal.backend.set_len(wal.end)?;
            }
            wal.backend.sync()?;
        }
        Ok((wal, commits))
    }

    pub fn frames(&self) -> u64 {
        self.frames
    }

    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Appends one commit: a frame per page, the last one carrying the commit marker.
    pub fn append_commit(
        &mut self,
        pages: &[(u64, &[u8])],
        db_pages: u64,
        sync: bool,
    ) -> Result<()> {
        debug_assert!(!pages.is_empty() && db_pages > 0);
        let frame_size = FRAME_HEADER_SIZE + self.page_size;
        let mut buf = vec![0u8; frame_size * pages.len()];
        let mut chain = self.chain;
        for (i, (no, page)) in pages.iter().enumerate() {
            debug_assert_eq!(page.len(), self.page_size);
            let frame = &mut buf[i * frame_size..(i + 1) * frame_size];
            let (hdr, body) = frame.split_at_mut(FRAME_HEADER_SIZE);
            put_u64(hdr, F_PAGE, *no);
            let marker = if i + 1 == pages.len() { db_pages } else { 0 };
            put_u64(hdr, F_COMMIT, marker);
            put_u32(hdr, F_SALT1, self.salt1);
            put_u32(hdr, F_SALT2, self.salt2);
            body.copy_from_slice(page);
            chain = frame_checksum(chain, hdr, body);
            put_u32(hdr, F_CHECKSUM, chain);
        }
        self.backend.write_at(self.end, &buf)?;
        if sync {
            self.backend.sync()?;
        }
        self.end += buf.len() as u64;
        self.chain = chain;
        self.frames += pages.len() as u64;
        Ok(())
    }

    pub fn sync(&self) -> Result<()> {
        Ok(self.backend.sync()?)
    }

    /// Starts a new generation: fresh salts, header only. Frames of the old generation can
    /// never validate again.
    pub fn reset(&mut self, sync: bool) -> Result<()> {
        self.generation = self.generation.wrapping_add(1);
        let (s1, s2) = fresh_salts();
        let mut header = [0u8; WAL_HEADER_SIZE];
        header[H_MAGIC..H_MAGIC + 8].copy_from_slice(&WAL_MAGIC);
        put_u32(&mut header, H_VERSION, WAL_VERSION);
        put_u32(&mut header, H_PAGE_SIZE, self.page_size as u32);
        put_u64(&mut header, H_GENERATION, self.generation);
        put_u64(&mut header, H_DB_ID, self.db_id);
        put_u32(&mut header, H_SALT1, s1);
        put_u32(&mut header, H_SALT2, s2);
        let crc = crc32fast::hash(&header[..H_CHECKSUM]);
        put_u32(&mut header, H_CHECKSUM, crc);
        // Empty the log durably before writing the new header: a crash can then leave only a
        // short log (a torn header and nothing else), never a torn header in front of old
        // frames, which would be indistinguishable from damage.
        self.backend.set_len(0)?;
        if sync {
            self.backend.sync()?;
        }
        self.backend.write_at(0, &header)?;
        if sync {
            self.backend.sync()?;
        }
        self.salt1 = s1;
        self.salt2 = s2;
        self.chain = crc;
        self.end = WAL_HEADER_SIZE as u64;
        self.frames = 0;
        Ok(())
    }
}

/// The chained frame checksum. The page's own CRC trailer is hashed *before* the page body:
/// a CRC over data followed by that data's CRC leaves a residue that no longer depends on
/// the data, so hashing the trailer last would make the chain blind to the page content.
fn frame_checksum(prev: u32, hdr: &[u8], page: &[u8]) -> u32 {
    let (body, trailer) = page.split_at(page.len() - PAGE_TRAILER);
    let mut h = crc32fast::Hasher::new_with_initial(prev);
    h.update(&hdr[..F_CHECKSUM]);
    h.update(trailer);
    h.update(body);
    h.finalize()
}

fn fresh_salts() -> (u32, u32) {
    let x = random_u64();
    (x as u32, (x >> 32) as u32)
}

/// 64 unpredictable bits (std's per-process random hash keys, time and pid).
pub(crate) fn random_u64() -> u64 {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    h.write_u32(std::process::id());
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::MemoryBackend;
    use std::sync::Arc;

    #[derive(Debug, Clone)]
    struct Shared(Arc<MemoryBackend>);
    impl StorageBackend for Shared {
        fn read_at(&self, o: u64, b: &mut [u8]) -> std::io::Result<()> {
            self.0.read_at(o, b)
        }
        fn write_at(&self, o: u64, d: &[u8]) -> std::io::Result<()> {
            self.0.write_at(o, d)
        }
        fn len(&self) -> std::io::Result<u64> {
            self.0.len()
        }
        fn set_len(&self, l: u64) -> std::io::Result<()> {
            self.0.set_len(l)
        }
        fn sync(&self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn page(fill: u8) -> Vec<u8> {
        vec![fill; 4096]
    }

    #[test]
    fn frames_round_trip_and_torn_tail_is_ignored() {
        let mem = Shared(Arc::new(MemoryBackend::new()));
        let (mut wal, commits) = Wal::open(Box::new(mem.clone()), 4096, true, None).unwrap();
        assert!(commits.is_empty());
        assert_eq!(mem.len().unwrap(), WAL_HEADER_SIZE as u64);
        let (a, b, c) = (page(1), page(2), page(3));
        wal.append_commit(&[(1, &a), (2, &b)], 3, true).unwrap();
        wal.append_commit(&[(2, &c)], 3, true).unwrap();
        let full = mem.0.contents();

        let (wal2, commits) = Wal::open(Box::new(mem.clone()), 4096, true, None).unwrap();
        assert_eq!(commits.len(), 2);
        assert_eq!(commits[0].pages.len(), 2);
        assert_eq!(commits[1].pages[0].1, c);
        assert_eq!(wal2.frames(), 3);

        // Cut the log at every byte of the last frame: only the first commit survives.
        let frame = FRAME_HEADER_SIZE + 4096;
        for cut in [
            full.len() - 1,
            full.len() - frame + 1,
            full.len() - frame / 2,
        ] {
            let torn = Shared(Arc::new(MemoryBackend::with_contents(full[..cut].to_vec())));
            let (_, commits) = Wal::open(Box::new(torn), 4096, false, None).unwrap();
            assert_eq!(commits.len(), 1, "cut at {cut}");
        }
        // A flipped bit in the second commit's frame ends recovery before it.
        let mut flipped = full.clone();
        flipped[full.len() - 100] ^= 0x10;
        let (_, commits) = Wal::open(
            Box::new(Shared(Arc::new(MemoryBackend::with_contents(flipped)))),
            4096,
            false,
            None,
        )
        .unwrap();
        assert_eq!(commits.len(), 1);
    }

    #[test]
    fn chain_depends_on_page_content_even_with_a_valid_trailer() {
        // Two sealed pages that differ only in their body must chain differently.
        let mut a = page(0);
        a[10] = 1;
        crate::format::seal_page(2, &mut a);
        let mut b = page(0);
        b[10] = 2;
        crate::format::seal_page(2, &mut b);
        let hdr = [0u8; FRAME_HEADER_SIZE];
        assert_ne!(frame_checksum(7, &hdr, &a), frame_checksum(7, &hdr, &b));
    }

    #[test]
    fn reset_invalidates_old_frames() {
        let mem = Shared(Arc::new(MemoryBackend::new()));
        let (mut wal, _) = Wal::open(Box::new(mem.clone()), 4096, true, None).unwrap();
        let a = page(9);
        wal.append_commit(&[(1, &a)], 2, true).unwrap();
        let old = mem.0.contents();
        wal.reset(true).unwrap();
        assert_eq!(mem.len().unwrap(), WAL_HEADER_SIZE as u64);
        // Put the old frame back behind the new header: its salts no longer match.
        mem.write_at(WAL_HEADER_SIZE as u64, &old[WAL_HEADER_SIZE..])
            .unwrap();
        let (_, commits) = Wal::open(Box::new(mem.clone()), 4096, true, None).unwrap();
        assert!(commits.is_empty());
    }

    #[test]
    fn damaged_header_before_frames_is_corruption() {
        let mem = Shared(Arc::new(MemoryBackend::new()));
        let (mut wal, _) = Wal::open(Box::new(mem.clone()), 4096, true, None).unwrap();
        let a = page(9);
        wal.append_commit(&[(1, &a)], 2, true).unwrap();
        mem.write_at(3, &[0xff]).unwrap();
        assert!(matches!(
            Wal::open(Box::new(mem), 4096, true, None),
            Err(Error::Corruption(_))
        ));
    }
}
