//! Secondary indexes: key extraction from documents, maintenance inside a write
//! transaction, and resumable scans.
//!
//! Entries (see `docs/format.md`, "Indexes"): a unique index maps `key(value)` to the
//! document id (8 bytes, big-endian); every other kind stores `key(values) ‖ id` with an
//! empty value, so equal keys order by id.

use crate::btree::{self, Cursor, PageRead, PageWrite, TreeValue};
use crate::catalog::{CollectionKind, IndexDef, IndexKind, IndexSpec};
use crate::codec::keys;
use crate::codec::Datum;
use crate::error::{Error, Result};
use std::collections::HashSet;

/// The encoded keys (without id) a document contributes to an index, deduplicated;
/// `expires_at` is the document's expiry time (from its header), what an Expiry index holds.
pub fn keys_for(spec: &IndexSpec, doc: &Datum, expires_at: Option<u64>) -> Result<Vec<Vec<u8>>> {
    let value = |path: &str| doc.path(path).cloned().unwrap_or(Datum::Null);
    let mut out = match spec.kind {
        IndexKind::Standard => vec![keys::encode(&[value(&spec.paths[0])])?],
        IndexKind::Unique => match value(&spec.paths[0]) {
            // Like SQL, absent values do not take part in uniqueness.
            Datum::Null => Vec::new(),
            v => vec![keys::encode(&[v])?],
        },
        IndexKind::Each => match value(&spec.paths[0]) {
            Datum::List(items) | Datum::Set(items) => items
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
        IndexKind::Expiry => expires_at
            .map(|at| at.to_be_bytes().to_vec())
            .into_iter()
            .collect(),
    };
    out.sort_unstable();
    out.dedup();
    Ok(out)
}

/// The tree key of an entry: the encoded values, then (but for a unique index, whose value
/// holds it) the document's primary key: its id (u64 BE) or its key in a keyed collection.
pub fn entry_key(kind: IndexKind, value_key: &[u8], pk: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(value_key.len() + pk.len());
    k.extend_from_slice(value_key);
    if kind != IndexKind::Unique {
        k.extend_from_slice(pk);
    }
    k
}

/// The primary key an entry refers to. An id is the last 8 bytes of the entry; a key of a
/// keyed collection is what follows the entry's encoded values.
pub fn entry_pk<'a>(
    spec: &IndexSpec,
    keyed: bool,
    key: &'a [u8],
    value: &'a [u8],
) -> Result<&'a [u8]> {
    if spec.kind == IndexKind::Unique {
        return Ok(value);
    }
    let missing = || Error::corrupt("index entry without a document key");
    let at = if spec.kind == IndexKind::Expiry {
        if key.len() <= 8 {
            return Err(missing());
        }
        8
    } else if keyed {
        let values = if spec.kind == IndexKind::Composite {
            spec.paths.len()
        } else {
            1
        };
        keys::tuple_len(key, values).ok_or_else(missing)?
    } else {
        key.len().checked_sub(8).ok_or_else(missing)?
    };
    Ok(&key[at..])
}

/// The document id a primary key of an id collection holds.
pub fn pk_id(pk: &[u8]) -> Result<u64> {
    let id: [u8; 8] = pk
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
        IndexKind::Expiry => spec.paths.is_empty(),
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

/// One document changing, as index maintenance sees it.
pub(crate) struct Change<'a> {
    pub(crate) collection: &'a str,
    /// The collection is keyed (`pk` is the caller's key), not by id (`pk` is the id, BE).
    pub(crate) keyed: bool,
    pub(crate) pk: &'a [u8],
    pub(crate) old: Option<&'a Datum>,
    pub(crate) new: Option<&'a Datum>,
    /// The expiry times of the old and the new document (from their headers).
    pub(crate) old_expires: Option<u64>,
    pub(crate) new_expires: Option<u64>,
    /// An index is being built from the stored documents (for the unique-clash message).
    pub(crate) building: bool,
}

/// A primary key as messages show it: the id, or the key as Python writes it.
fn show_pk(keyed: bool, pk: &[u8]) -> String {
    if !keyed {
        return pk_id(pk).map_or_else(|_| "?".into(), |id| id.to_string());
    }
    crate::codec::show_key(pk)
}

/// Index entries to remove and add when a document changes from `old` to `new`,
/// checking unique indexes first.
pub(crate) fn plan_changes(
    r: &impl PageRead,
    defs: &[IndexDef],
    change: &Change<'_>,
) -> Result<Vec<IndexChange>> {
    let collection = change.collection;
    let mut plan = Vec::with_capacity(defs.len());
    for def in defs {
        let before = match change.old {
            Some(d) => keys_for(&def.spec, d, change.old_expires)?,
            None => Vec::new(),
        };
        let after = match change.new {
            Some(d) => keys_for(&def.spec, d, change.new_expires).map_err(|e| match e {
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
                let Some(other) = btree::get(r, def.root, key)? else {
                    continue;
                };
                if *other == *change.pk {
                    continue;
                }
                let shown = change
                    .new
                    .and_then(|d| d.path(&def.spec.paths[0]))
                    .map(Datum::to_string)
                    .unwrap_or_default();
                let name = &def.spec.name;
                let other = show_pk(change.keyed, &other);
                let this = show_pk(change.keyed, change.pk);
                if change.building {
                    return Err(Error::invalid(format!(
                        "cannot build unique index {name:?} of {collection:?}: documents {other} \
                         and {this} both hold {shown}; change or delete one of them (by \
                         collection name, e.g. update({collection:?}, {this}, ...)), or \
                         declare the field with obj.Index instead of obj.Unique"
                    )));
                }
                return Err(Error::invalid(format!(
                    "unique index {name:?} of {collection:?} already holds {shown} (document {other})"
                )));
            }
        }
        plan.push((remove, add));
    }
    Ok(plan)
}

/// Applies a plan from [`plan_changes`] for the document with primary key `pk`.
pub(crate) fn apply_changes(
    w: &mut impl PageWrite,
    defs: &[IndexDef],
    pk: &[u8],
    plan: Vec<IndexChange>,
) -> Result<()> {
    for (def, (remove, add)) in defs.iter().zip(plan) {
        let kind = def.spec.kind;
        for key in remove {
            btree::delete(w, def.root, &entry_key(kind, &key, pk))?;
        }
        for key in add {
            let value: &[u8] = if kind == IndexKind::Unique { pk } else { &[] };
            let entry = entry_key(kind, &key, pk);
            btree::put(w, def.root, &entry, value).map_err(|e| match e {
                Error::InvalidArgument(m) => Error::invalid(format!(
                    "index {:?}: the entry (indexed value and document key) is too long: {m}",
                    def.spec.name
                )),
                other => other,
            })?;
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
/// primary keys in key order (ties by primary key), or in the exact reverse order. A
/// shorter tuple bound is a prefix. Documents an `Each` index lists under several keys in
/// the range come out once.
#[derive(Clone, Debug)]
pub struct IndexScan {
    root: u64,
    spec: IndexSpec,
    /// The index belongs to a keyed collection.
    keyed: bool,
    resume: Resume,
    /// The encoded lower bound (keys below it end a backward walk).
    lo: Vec<u8>,
    /// The encoded upper bound, a prefix (keys past it end a forward walk).
    hi: Option<Vec<u8>>,
    seen: Option<HashSet<Vec<u8>>>,
}

impl IndexScan {
    /// A scan of index `def` of a collection of kind `collection` between `lo` and `hi`
    /// (inclusive, tuple prefixes) in `direction`.
    pub fn new(
        def: &IndexDef,
        collection: CollectionKind,
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
        let seen = (def.spec.kind == IndexKind::Each).then(HashSet::new);
        Ok(IndexScan {
            root: def.root,
            spec: def.spec.clone(),
            keyed: collection == CollectionKind::Keyed,
            resume,
            lo,
            hi,
            seen,
        })
    }

    /// True when the scan's entries refer to keys (the index of a keyed collection).
    pub fn is_keyed(&self) -> bool {
        self.keyed
    }

    /// Up to `limit` more document ids (of an id collection); an empty result means the
    /// scan is over.
    pub fn next_batch<R: PageRead>(&mut self, r: &R, limit: usize) -> Result<Vec<u64>> {
        let mut out = Vec::new();
        self.walk(r, limit, |pk| {
            out.push(pk_id(pk)?);
            Ok(())
        })?;
        Ok(out)
    }

    /// Up to `limit` more primary keys (the keys of a keyed collection, the big-endian ids
    /// of an id collection); an empty result means the scan is over.
    pub fn next_keys<R: PageRead>(&mut self, r: &R, limit: usize) -> Result<Vec<Vec<u8>>> {
        let mut out = Vec::new();
        self.walk(r, limit, |pk| {
            out.push(pk.to_vec());
            Ok(())
        })?;
        Ok(out)
    }

    /// Hands up to `limit` primary keys to `emit`, remembering where to resume.
    fn walk<R: PageRead>(
        &mut self,
        r: &R,
        limit: usize,
        mut emit: impl FnMut(&[u8]) -> Result<()>,
    ) -> Result<()> {
        let mut taken = 0;
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
                    taken += self.take(r, &page, i, &mut emit)?;
                    if taken >= limit {
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
                    taken += self.take(r, &page, i, &mut emit)?;
                    if taken >= limit {
                        self.resume = Resume::Below(Some(key.to_vec()));
                        break;
                    }
                }
            }
        }
        Ok(())
    }

    /// Emits the primary key of entry `i` of a leaf unless this scan emitted it already;
    /// returns how many it emitted (0 or 1).
    fn take<R: PageRead>(
        &mut self,
        r: &R,
        page: &crate::pager::PageBuf,
        i: usize,
        emit: &mut impl FnMut(&[u8]) -> Result<()>,
    ) -> Result<usize> {
        let key = btree::node::key(page, i);
        let value = TreeValue::from_leaf(r, page, i)?;
        let pk = entry_pk(&self.spec, self.keyed, key, &value)?;
        if self
            .seen
            .as_mut()
            .is_none_or(|seen| seen.insert(pk.to_vec()))
        {
            emit(pk)?;
            return Ok(1);
        }
        Ok(0)
    }
}
