//! Secondary indexes: key extraction from documents, maintenance inside a write
//! transaction, and resumable scans.
//!
//! Entries (see `docs/format.md`, "Indexes"): a unique index maps `key(value)` to the
//! document id (8 bytes, big-endian); every other kind stores `key(values) ‖ id` with an
//! empty value, so equal keys order by id.

use crate::btree::{self, Cursor, PageRead, PageWrite, TreeValue};
use crate::catalog::{IndexDef, IndexKind, IndexSpec};
use crate::codec::keys;
use crate::codec::Datum;
use crate::error::{Error, Result};
use std::collections::HashSet;

/// The encoded keys (without id) a document contributes to an index, deduplicated.
pub fn keys_for(spec: &IndexSpec, doc: &Datum) -> Result<Vec<Vec<u8>>> {
    let value = |path: &str| doc.path(path).cloned().unwrap_or(Datum::Null);
    let mut out = match spec.kind {
        IndexKind::Standard => vec![keys::encode(&[value(&spec.paths[0])])?],
        IndexKind::Unique => match value(&spec.paths[0]) {
            // Like SQL, absent values do not take part in uniqueness.
            Datum::Null => Vec::new(),
            v => vec![keys::encode(&[v])?],
        },
        IndexKind::Each => match value(&spec.paths[0]) {
            Datum::List(items) => items
                .iter()
                .map(|v| keys::encode(std::slice::from_ref(v)))
                .collect::<Result<_>>()?,
            Datum::Null => Vec::new(),
            v => vec![keys::encode(&[v])?],
        },
        IndexKind::Composite => {
            let values: Vec<Datum> = spec.paths.iter().map(|p| value(p)).collect();
            vec![keys::encode(&values)?]
        }
    };
    out.sort_unstable();
    out.dedup();
    Ok(out)
}

/// The tree key of an entry.
pub fn entry_key(kind: IndexKind, value_key: &[u8], id: u64) -> Vec<u8> {
    let mut k = Vec::with_capacity(value_key.len() + 8);
    k.extend_from_slice(value_key);
    if kind != IndexKind::Unique {
        k.extend_from_slice(&id.to_be_bytes());
    }
    k
}

/// The document id of an entry.
pub fn entry_id(kind: IndexKind, key: &[u8], value: &[u8]) -> Result<u64> {
    let bytes = if kind == IndexKind::Unique {
        value
    } else {
        key.get(key.len().saturating_sub(8)..).unwrap_or(&[])
    };
    let id: [u8; 8] = bytes
        .try_into()
        .map_err(|_| Error::corrupt("index entry without a document id"))?;
    Ok(u64::from_be_bytes(id))
}

/// Checks a spec before it is stored.
pub fn check_spec(spec: &IndexSpec) -> Result<()> {
    if spec.name.is_empty() || spec.name.len() > 255 {
        return Err(Error::invalid("index name must be 1 to 255 bytes long"));
    }
    let want = match spec.kind {
        IndexKind::Composite => spec.paths.len() >= 2,
        _ => spec.paths.len() == 1,
    };
    if !want || spec.paths.iter().any(|p| p.is_empty()) {
        return Err(Error::invalid(format!(
            "index {:?}: a {} index needs {} non-empty field path(s), got {}",
            spec.name,
            spec.kind.name(),
            if spec.kind == IndexKind::Composite {
                "two or more"
            } else {
                "exactly one"
            },
            Datum::List(spec.paths.iter().cloned().map(Datum::Str).collect())
        )));
    }
    Ok(())
}

/// Which way an index scan walks its key order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// Ascending keys, ties by ascending id.
    Forward,
    /// The exact reverse: descending keys, ties by descending id.
    Backward,
}

/// Encoded index keys (without id) to remove and to add for one index.
pub(crate) type IndexChange = (Vec<Vec<u8>>, Vec<Vec<u8>>);

/// Index entries to remove and add when a document changes from `old` to `new`,
/// checking unique indexes first.
pub(crate) fn plan_changes(
    r: &impl PageRead,
    collection: &str,
    defs: &[IndexDef],
    id: u64,
    old: Option<&Datum>,
    new: Option<&Datum>,
    building: bool,
) -> Result<Vec<IndexChange>> {
    let mut plan = Vec::with_capacity(defs.len());
    for def in defs {
        let before = match old {
            Some(d) => keys_for(&def.spec, d)?,
            None => Vec::new(),
        };
        let after = match new {
            Some(d) => keys_for(&def.spec, d).map_err(|e| match e {
                Error::InvalidArgument(m) => {
                    Error::invalid(format!("index {:?} of {collection:?}: {m}", def.spec.name))
                }
                other => other,
            })?,
            None => Vec::new(),
        };
        let remove: Vec<Vec<u8>> = before
            .iter()
            .filter(|k| after.binary_search(k).is_err())
            .cloned()
            .collect();
        let add: Vec<Vec<u8>> = after
            .iter()
            .filter(|k| before.binary_search(k).is_err())
            .cloned()
            .collect();
        if def.spec.kind == IndexKind::Unique {
            for key in &add {
                if let Some(v) = btree::get(r, def.root, key)? {
                    let other = entry_id(IndexKind::Unique, key, &v)?;
                    if other != id {
                        let shown = new
                            .and_then(|d| d.path(&def.spec.paths[0]))
                            .map(Datum::to_string)
                            .unwrap_or_default();
                        let name = &def.spec.name;
                        if building {
                            return Err(Error::invalid(format!(
                                "cannot build unique index {name:?} of {collection:?}: documents {other} \
                                 and {id} both hold {shown}; change or delete one of them (by \
                                 collection name, e.g. update({collection:?}, {id}, ...)), or \
                                 declare the field with obj.Index instead of obj.Unique"
                            )));
                        }
                        return Err(Error::invalid(format!(
                            "unique index {name:?} of {collection:?} already holds {shown} (document {other})"
                        )));
                    }
                }
            }
        }
        plan.push((remove, add));
    }
    Ok(plan)
}

/// Applies a plan from [`plan_changes`] for document `id`.
pub(crate) fn apply_changes(
    w: &mut impl PageWrite,
    defs: &[IndexDef],
    id: u64,
    plan: Vec<IndexChange>,
) -> Result<()> {
    for (def, (remove, add)) in defs.iter().zip(plan) {
        let kind = def.spec.kind;
        for key in remove {
            btree::delete(w, def.root, &entry_key(kind, &key, id))?;
        }
        for key in add {
            let value = if kind == IndexKind::Unique {
                id.to_be_bytes().to_vec()
            } else {
                Vec::new()
            };
            btree::put(w, def.root, &entry_key(kind, &key, id), &value)?;
        }
    }
    Ok(())
}

/// Where an index scan resumes.
#[derive(Clone, Debug)]
enum Resume {
    /// Forward from the first key `>=` this one.
    From(Vec<u8>),
    /// Backward from the last key `<` this one (None: from the last key).
    Below(Option<Vec<u8>>),
    Done,
}

/// A resumable walk over the entries of an index between two inclusive bounds, returning
/// document ids in key order (ties by id), or in the exact reverse order. A shorter tuple
/// bound is a prefix. Documents an `Each` index lists under several keys in the range come
/// out once.
#[derive(Clone, Debug)]
pub struct IndexScan {
    root: u64,
    kind: IndexKind,
    resume: Resume,
    /// The encoded lower bound (keys below it end a backward walk).
    lo: Vec<u8>,
    /// The encoded upper bound, a prefix (keys past it end a forward walk).
    hi: Option<Vec<u8>>,
    seen: Option<HashSet<u64>>,
}

impl IndexScan {
    /// A scan of the index tree at `root` between `lo` and `hi` (inclusive, tuple prefixes) in `direction`.
    pub fn new(
        root: u64,
        kind: IndexKind,
        lo: Option<&[Datum]>,
        hi: Option<&[Datum]>,
        direction: Direction,
    ) -> Result<IndexScan> {
        let lo = match lo {
            Some(values) => keys::encode(values)?,
            None => Vec::new(),
        };
        let hi = hi.map(keys::encode).transpose()?;
        let resume = match direction {
            Direction::Forward => Resume::From(lo.clone()),
            // Every key within the prefix `hi` sorts below the prefix's successor.
            Direction::Backward => Resume::Below(hi.as_deref().and_then(keys::prefix_successor)),
        };
        let seen = (kind == IndexKind::Each).then(HashSet::new);
        Ok(IndexScan {
            root,
            kind,
            resume,
            lo,
            hi,
            seen,
        })
    }

    /// Up to `limit` more ids; an empty result means the scan is over.
    pub fn next_batch<R: PageRead>(&mut self, r: &R, limit: usize) -> Result<Vec<u64>> {
        let mut out = Vec::new();
        match std::mem::replace(&mut self.resume, Resume::Done) {
            Resume::Done => {}
            Resume::From(from) => {
                let mut cursor = Cursor::seek(r, self.root, Some(&from))?;
                while let Some((page, i)) = cursor.next(r)? {
                    let key = btree::node::key(&page, i);
                    if self
                        .hi
                        .as_deref()
                        .is_some_and(|hi| keys::past_prefix(key, hi))
                    {
                        break;
                    }
                    self.take(r, &page, i, &mut out)?;
                    if out.len() >= limit {
                        let mut next = key.to_vec();
                        next.push(0);
                        self.resume = Resume::From(next);
                        break;
                    }
                }
            }
            Resume::Below(below) => {
                let mut cursor = Cursor::seek_back(r, self.root, below.as_deref())?;
                while let Some((page, i)) = cursor.prev(r)? {
                    let key = btree::node::key(&page, i);
                    if key < self.lo.as_slice() {
                        break;
                    }
                    self.take(r, &page, i, &mut out)?;
                    if out.len() >= limit {
                        self.resume = Resume::Below(Some(key.to_vec()));
                        break;
                    }
                }
            }
        }
        Ok(out)
    }

    /// Adds the id of entry `i` of a leaf, unless this scan returned it already.
    fn take<R: PageRead>(
        &mut self,
        r: &R,
        page: &crate::pager::PageBuf,
        i: usize,
        out: &mut Vec<u64>,
    ) -> Result<()> {
        let key = btree::node::key(page, i);
        let value = TreeValue::from_leaf(r, page, i)?;
        let id = entry_id(self.kind, key, &value)?;
        if self.seen.as_mut().is_none_or(|seen| seen.insert(id)) {
            out.push(id);
        }
        Ok(())
    }
}
