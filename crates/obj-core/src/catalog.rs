//! The catalog: a B-tree (root in the meta page) mapping names to the records that describe
//! collections. Keys are a one-byte kind prefix plus the name, so later record kinds
//! (schemas, index definitions) share the tree without colliding.

use crate::btree::{self, Cursor, PageRead, PageWrite};
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};

const COLLECTION_PREFIX: u8 = 0x01;

/// Longest collection name, in UTF-8 bytes.
pub const MAX_NAME_LEN: usize = 255;

/// What the catalog knows about one collection.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CollectionRecord {
    /// Stable small number, unique per database.
    pub id: u64,
    /// Root page of the primary tree (never moves).
    pub root: u64,
    /// Next id `insert` hands out; ids are never reused.
    pub next_id: u64,
    /// Live documents.
    pub count: u64,
}

pub fn check_name(name: &str) -> Result<()> {
    if name.is_empty() {
        return Err(Error::invalid("collection name must not be empty"));
    }
    if name.len() > MAX_NAME_LEN {
        return Err(Error::invalid(format!(
            "collection name of {} bytes exceeds the limit of {MAX_NAME_LEN} bytes",
            name.len()
        )));
    }
    Ok(())
}

fn key(name: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(name.len() + 1);
    k.push(COLLECTION_PREFIX);
    k.extend_from_slice(name.as_bytes());
    k
}

fn decode(name: &str, bytes: &[u8]) -> Result<CollectionRecord> {
    postcard::from_bytes(bytes)
        .map_err(|e| Error::corrupt(format!("catalog record of collection {name:?}: {e}")))
}

pub fn load<R: PageRead>(r: &R, catalog_root: u64, name: &str) -> Result<Option<CollectionRecord>> {
    match btree::get(r, catalog_root, &key(name))? {
        Some(v) => Ok(Some(decode(name, &v)?)),
        None => Ok(None),
    }
}

pub fn store<W: PageWrite>(
    w: &mut W,
    catalog_root: u64,
    name: &str,
    rec: &CollectionRecord,
) -> Result<()> {
    let bytes = postcard::to_allocvec(rec).map_err(|e| Error::invalid(e.to_string()))?;
    btree::put(w, catalog_root, &key(name), &bytes)?;
    Ok(())
}

/// Every collection, in name order.
pub fn list<R: PageRead>(r: &R, catalog_root: u64) -> Result<Vec<(String, CollectionRecord)>> {
    let mut out = Vec::new();
    let mut cursor = Cursor::seek(r, catalog_root, Some(&[COLLECTION_PREFIX]))?;
    while let Some((page, i)) = cursor.next(r)? {
        let k = btree::node::key(&page, i);
        if k.first() != Some(&COLLECTION_PREFIX) {
            break;
        }
        let name = std::str::from_utf8(&k[1..])
            .map_err(|_| Error::corrupt("catalog holds a collection name that is not UTF-8"))?
            .to_string();
        let value = btree::Value::from_leaf(r, &page, i)?;
        let rec = decode(&name, &value)?;
        out.push((name, rec));
    }
    Ok(out)
}
