//! Blob stores: values of any size under caller-given keys, written and read in chunks so
//! none passes through memory whole.
//!
//! A blob store `name` is two keyed collections: `name` holds one header per blob (a
//! dict-native document: its blob id, size, SHA-256, content type, user metadata, creation
//! time and chunk size, so every tool that reads documents reads headers), and
//! [`chunks_of`]`(name)` holds the content as raw documents keyed by `blob id ‖ chunk
//! number` (both big-endian, so a blob's chunks are adjacent and in order). Blob ids come
//! from the chunk collection's id counter and are never reused, so a replaced or deleted
//! blob's chunks are never confused with the new ones; replacing or deleting a blob deletes
//! its chunks in the same transaction, and their pages go back to the freelist.
//!
//! A blob appears atomically: its chunks and its header are writes of one transaction (a
//! [`BlobWriter`] streams into a `WriteTxn`, whose changed pages spill to disk when they
//! outgrow memory). The change log records the header only (the chunks would put every
//! blob's content into the log): a replica built from the log has the headers, not the
//! content.

use crate::catalog::CollectionKind;
use crate::codec::Datum;
use crate::doc::DocKind;
use crate::error::{Error, Result};
use crate::reader::Reader;
use crate::write::WriteTxn;
use sha2::{Digest, Sha256};
use std::ops::Bound;

/// Bytes per chunk of a blob written from now on (each blob records its own).
pub const CHUNK_SIZE: usize = 256 << 10;

/// The collection holding the chunks of blob store `store`.
pub fn chunks_of(store: &str) -> String {
    format!("{store}#chunks")
}

fn chunk_key(id: u64, index: u64) -> [u8; 16] {
    let mut k = [0u8; 16];
    k[..8].copy_from_slice(&id.to_be_bytes());
    k[8..].copy_from_slice(&index.to_be_bytes());
    k
}

/// The blob id a chunk key starts with.
fn blob_id_of(key: &[u8], store: &str) -> Result<u64> {
    key.get(..8)
        .and_then(|b| b.try_into().ok())
        .map(u64::from_be_bytes)
        .filter(|_| key.len() == 16)
        .ok_or_else(|| {
            Error::corrupt(format!(
                "a chunk key of blob store {store:?} is not 16 bytes"
            ))
        })
}

/// What a blob's header says.
#[derive(Clone, Debug, PartialEq)]
pub struct BlobInfo {
    /// The blob's id in its store (chunk keys start with it).
    pub id: u64,
    /// Content length in bytes.
    pub size: u64,
    /// SHA-256 of the content.
    pub sha256: [u8; 32],
    /// The content type given when it was written.
    pub content_type: Option<String>,
    /// User metadata (a map) given when it was written.
    pub meta: Option<Datum>,
    /// When it was written, microseconds since the Unix epoch (UTC).
    pub created_micros: i64,
    /// Bytes per chunk (the last chunk may be shorter).
    pub chunk_size: u32,
}

impl BlobInfo {
    /// How many chunks the content takes.
    pub fn chunks(&self) -> u64 {
        self.size.div_ceil(u64::from(self.chunk_size.max(1)))
    }

    fn to_datum(&self) -> Datum {
        Datum::Map(vec![
            ("id".into(), Datum::Int(self.id as i64)),
            ("size".into(), Datum::Int(self.size as i64)),
            ("sha256".into(), Datum::Bytes(self.sha256.to_vec())),
            (
                "content_type".into(),
                self.content_type.clone().map_or(Datum::Null, Datum::Str),
            ),
            ("meta".into(), self.meta.clone().unwrap_or(Datum::Null)),
            (
                "created".into(),
                Datum::DateTime {
                    micros: self.created_micros,
                    offset_secs: Some(0),
                },
            ),
            ("chunk".into(), Datum::Int(i64::from(self.chunk_size))),
        ])
    }

    fn from_datum(d: &Datum, store: &str) -> Result<BlobInfo> {
        let bad = |what: &str| {
            Error::corrupt(format!(
                "a blob header of store {store:?} is damaged: {what}"
            ))
        };
        let Datum::Map(fields) = d else {
            return Err(bad("not a map"));
        };
        let get = |name: &str| fields.iter().find(|(k, _)| k == name).map(|(_, v)| v);
        let int = |name: &str| match get(name) {
            Some(Datum::Int(v)) if *v >= 0 => Ok(*v as u64),
            _ => Err(bad(name)),
        };
        let sha256 = match get("sha256") {
            Some(Datum::Bytes(b)) if b.len() == 32 => {
                let mut h = [0u8; 32];
                h.copy_from_slice(b);
                h
            }
            _ => return Err(bad("sha256")),
        };
        let content_type = match get("content_type") {
            None | Some(Datum::Null) => None,
            Some(Datum::Str(s)) => Some(s.clone()),
            _ => return Err(bad("content_type")),
        };
        let meta = match get("meta") {
            None | Some(Datum::Null) => None,
            Some(m @ Datum::Map(_)) => Some(m.clone()),
            _ => return Err(bad("meta")),
        };
        let created_micros = match get("created") {
            Some(Datum::DateTime { micros, .. }) => *micros,
            _ => return Err(bad("created")),
        };
        let chunk_size = u32::try_from(int("chunk")?)
            .ok()
            .filter(|c| *c > 0)
            .ok_or_else(|| bad("chunk"))?;
        Ok(BlobInfo {
            id: int("id")?,
            size: int("size")?,
            sha256,
            content_type,
            meta,
            created_micros,
            chunk_size,
        })
    }
}

/// Blob reads, for every kind of snapshot.
pub trait BlobReads: Reader {
    /// The header of the blob under `key`, or None.
    fn blob_info(&self, store: &str, key: &[u8]) -> Result<Option<BlobInfo>> {
        let Some(v) = self.get_key(store, key)? else {
            return Ok(None);
        };
        if v.header().kind != DocKind::Value {
            return Err(Error::invalid(format!(
                "collection {store:?} is not a blob store (its records are not blob headers)"
            )));
        }
        let d = Datum::decode(&v)?;
        BlobInfo::from_datum(&d, store).map(Some)
    }

    /// Chunk `index` of a blob, whole (the last one may be shorter). A chunk the header
    /// promises but the store lacks, or of the wrong length, is corruption.
    fn blob_chunk(&self, store: &str, info: &BlobInfo, index: u64) -> Result<Vec<u8>> {
        let chunks = info.chunks();
        if index >= chunks {
            return Err(Error::invalid(format!(
                "chunk {index} is past the end of a blob of {chunks} chunks"
            )));
        }
        let want = if index + 1 == chunks {
            info.size - index * u64::from(info.chunk_size)
        } else {
            u64::from(info.chunk_size)
        };
        let got = self
            .get_key(&chunks_of(store), &chunk_key(info.id, index))?
            .ok_or_else(|| {
                Error::corrupt(format!(
                    "blob {} of store {store:?} lacks chunk {index} of {chunks}",
                    info.id
                ))
            })?
            .into_vec();
        if got.len() as u64 != want {
            return Err(Error::corrupt(format!(
                "chunk {index} of blob {} of store {store:?} holds {} bytes, not {want}",
                info.id,
                got.len()
            )));
        }
        Ok(got)
    }
}

impl<R: Reader> BlobReads for R {}

/// A blob being written into a transaction: whole chunks are written as they fill, the
/// header (which makes the blob visible) by [`BlobWriter::finish`].
pub struct BlobWriter {
    store: String,
    chunks: String,
    key: Vec<u8>,
    id: u64,
    hasher: Sha256,
    size: u64,
    next: u64,
    buf: Vec<u8>,
    content_type: Option<String>,
    meta: Option<Datum>,
}

impl BlobWriter {
    /// Starts a blob under `key` of `store` (creating the store's collections if needed).
    pub fn begin(
        txn: &mut WriteTxn,
        store: &str,
        key: &[u8],
        content_type: Option<String>,
        meta: Option<Datum>,
    ) -> Result<BlobWriter> {
        crate::catalog::check_key(key)?;
        if let Some(m) = &meta {
            if !matches!(m, Datum::Map(_)) {
                return Err(Error::invalid("blob meta must be a map"));
            }
        }
        let chunks = chunks_of(store);
        txn.create_collection(store, CollectionKind::Keyed)?;
        txn.unlogged(|t| t.create_collection(&chunks, CollectionKind::Keyed))?;
        // Above every blob id in use, also when the chunks came from elsewhere (an import
        // of exported records does not carry the counter).
        let highest = match txn
            .key_range(&chunks, Bound::Unbounded, Bound::Unbounded, true)?
            .next()
        {
            Some(entry) => blob_id_of(&entry?.0, store)?,
            None => 0,
        };
        let id = txn.take_id(&chunks, highest + 1)?;
        Ok(BlobWriter {
            store: store.to_owned(),
            chunks,
            key: key.to_vec(),
            id,
            hasher: Sha256::new(),
            size: 0,
            next: 0,
            buf: Vec::with_capacity(CHUNK_SIZE),
            content_type,
            meta,
        })
    }

    /// Bytes written so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Appends `data`, writing every chunk it completes.
    pub fn write(&mut self, txn: &mut WriteTxn, mut data: &[u8]) -> Result<()> {
        self.hasher.update(data);
        self.size += data.len() as u64;
        while !data.is_empty() {
            if self.buf.is_empty() && data.len() >= CHUNK_SIZE {
                let (whole, rest) = data.split_at(CHUNK_SIZE);
                self.put_chunk(txn, whole)?;
                data = rest;
                continue;
            }
            let take = (CHUNK_SIZE - self.buf.len()).min(data.len());
            self.buf.extend_from_slice(&data[..take]);
            data = &data[take..];
            if self.buf.len() == CHUNK_SIZE {
                let full = std::mem::take(&mut self.buf);
                self.put_chunk(txn, &full)?;
                self.buf = full;
                self.buf.clear();
            }
        }
        Ok(())
    }

    fn put_chunk(&mut self, txn: &mut WriteTxn, chunk: &[u8]) -> Result<()> {
        let key = chunk_key(self.id, self.next);
        let chunks = &self.chunks;
        txn.unlogged(|t| t.put_key_doc(chunks, &key, DocKind::Raw, 0, chunk))?;
        self.next += 1;
        Ok(())
    }

    /// Writes the last chunk and the header, replacing (and freeing) any blob that was
    /// under the key. The blob is part of the transaction from here on.
    pub fn finish(mut self, txn: &mut WriteTxn) -> Result<BlobInfo> {
        if !self.buf.is_empty() {
            let last = std::mem::take(&mut self.buf);
            self.put_chunk(txn, &last)?;
        }
        let info = BlobInfo {
            id: self.id,
            size: self.size,
            sha256: std::mem::take(&mut self.hasher).finalize().into(),
            content_type: self.content_type.take(),
            meta: self.meta.take(),
            created_micros: crate::clock::now_micros() as i64,
            chunk_size: CHUNK_SIZE as u32,
        };
        if let Some(old) = txn.blob_info(&self.store, &self.key)? {
            delete_chunks(txn, &self.store, &old)?;
        }
        txn.put_key_doc(
            &self.store,
            &self.key,
            DocKind::Value,
            0,
            &info.to_datum().to_bytes(),
        )?;
        Ok(info)
    }

    /// Deletes what was written: the transaction is as if the blob was never begun (but
    /// for the blob id, which is not reused).
    pub fn abort(self, txn: &mut WriteTxn) -> Result<()> {
        let chunks = &self.chunks;
        for index in 0..self.next {
            txn.unlogged(|t| t.delete_key(chunks, &chunk_key(self.id, index)))?;
        }
        Ok(())
    }
}

/// Writes `data` as the blob under `key` (replacing any), in `txn`.
pub fn put_blob(
    txn: &mut WriteTxn,
    store: &str,
    key: &[u8],
    data: &[u8],
    content_type: Option<String>,
    meta: Option<Datum>,
) -> Result<BlobInfo> {
    let mut w = BlobWriter::begin(txn, store, key, content_type, meta)?;
    w.write(txn, data)?;
    w.finish(txn)
}

/// Deletes the blob under `key` and its chunks; returns whether there was one.
pub fn delete_blob(txn: &mut WriteTxn, store: &str, key: &[u8]) -> Result<bool> {
    let Some(info) = txn.blob_info(store, key)? else {
        return Ok(false);
    };
    delete_chunks(txn, store, &info)?;
    txn.delete_key(store, key)
}

fn delete_chunks(txn: &mut WriteTxn, store: &str, info: &BlobInfo) -> Result<()> {
    let chunks = chunks_of(store);
    for index in 0..info.chunks() {
        txn.unlogged(|t| t.delete_key(&chunks, &chunk_key(info.id, index)))?;
    }
    Ok(())
}

/// The chunk keys of a store that belong to no header (left by nothing the engine does;
/// the integrity check of a blob store reports them). Returns their number.
pub fn orphan_chunks<R: Reader>(r: &R, store: &str) -> Result<u64> {
    let mut ids = std::collections::HashSet::new();
    for entry in r.key_range(store, Bound::Unbounded, Bound::Unbounded, false)? {
        let (key, _) = entry?;
        if let Some(info) = r.blob_info(store, &key)? {
            ids.insert(info.id);
        }
    }
    let mut orphans = 0;
    for entry in r.key_range(&chunks_of(store), Bound::Unbounded, Bound::Unbounded, false)? {
        let (key, _) = entry?;
        if !ids.contains(&blob_id_of(&key, store)?) {
            orphans += 1;
        }
    }
    Ok(orphans)
}
