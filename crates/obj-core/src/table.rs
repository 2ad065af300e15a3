//! Tables: items addressed by a partition key and an optional sort key, kept in a keyed
//! collection (layout in `docs/format.md`, "Table keys").
//!
//! A table key is the order-preserving encoding ([`crate::codec::index_key`]) of the tuple
//! `(pk,)` or `(pk, sk)`, each part an integer, a string or bytes. The encoding of `(pk,)`
//! is a byte prefix of every `(pk, sk)`, so the items of a partition are one key range, in
//! sort-key order (integers numerically, strings by code point, bytes by byte), and every
//! sort-key condition is a narrower range of it. Items are dict-native values.
//!
//! The key types of a table (the partition key's, whether it has sort keys and theirs) are
//! those of its first key and are checked on every write. A condition or a filter sees the
//! stored item with its key values as attributes `pk` and `sk` (unless the item has
//! attributes of those names); a missing item is seen as an empty one.
//!
//! An item may expire: its header then holds the time ([`crate::DocHeader::expires_at`])
//! and the table's Expiry index ([`EXPIRY_INDEX`]) lists it by time. From that moment
//! ([`crate::clock`]) every read here treats it as gone (a condition sees it as missing);
//! the space is reclaimed by later writes to the table, a few expired items each, and by
//! [`reclaim`] (compaction reclaims them all).

use crate::btree::{self, Cursor, TreeValue};
use crate::catalog::{IndexDef, IndexKind, IndexSpec};
use crate::codec::{keys, Datum};
use crate::doc::DocKind;
use crate::error::{Error, Result};
use crate::query::Expr;
use crate::reader::KeyBounds;
use crate::reader::{Reader, Value};
use crate::write::WriteTxn;
use crate::{CollectionKind, MAX_KEY_LEN};
use std::borrow::Cow;
use std::ops::Bound;

pub use crate::codec::keys::{KeyTypes, PartType};

fn part_type(d: &Datum, what: &str) -> Result<PartType> {
    PartType::of(d).ok_or_else(|| {
        Error::invalid(format!(
            "{what} must be a str, bytes or int (64-bit), got {}",
            d.type_name()
        ))
    })
}

/// The stored key of `(pk,)` or `(pk, sk)`; refused unless the parts are ints, strings or
/// bytes and the key fits [`MAX_KEY_LEN`].
pub fn encode_key(pk: &Datum, sk: Option<&Datum>) -> Result<Vec<u8>> {
    part_type(pk, "partition key")?;
    let mut out = Vec::with_capacity(24);
    keys::encode_value(&mut out, pk)?;
    if let Some(sk) = sk {
        part_type(sk, "sort key")?;
        keys::encode_value(&mut out, sk)?;
    }
    if out.len() > MAX_KEY_LEN {
        return Err(Error::invalid(format!(
            "the key of an item must encode to at most {MAX_KEY_LEN} bytes; this one takes {}",
            out.len()
        )));
    }
    Ok(out)
}

/// The partition and sort key stored as `key`.
pub fn decode_key(key: &[u8]) -> Result<(Datum, Option<Datum>)> {
    let not_a_table = || {
        Error::invalid(format!(
            "key {} is not a table key: the collection was written by something other than \
             a table (an obj.Store?); open it as what wrote it",
            crate::codec::show_key(key)
        ))
    };
    let (pk, used) = keys::decode_part(key).ok_or_else(not_a_table)?;
    if used == key.len() {
        return Ok((pk, None));
    }
    let (sk, more) = keys::decode_part(&key[used..]).ok_or_else(not_a_table)?;
    if used + more != key.len() {
        return Err(not_a_table());
    }
    Ok((pk, Some(sk)))
}

fn key_types_of(key: &[u8]) -> Result<KeyTypes> {
    let (pk, sk) = decode_key(key)?;
    let of = |d: &Datum| PartType::of(d).ok_or_else(|| Error::corrupt("a table key part"));
    Ok(KeyTypes {
        pk: of(&pk)?,
        sk: sk.as_ref().map(of).transpose()?,
    })
}

/// The key types of the table `collection` (None while it is empty or missing).
pub fn key_types<R: Reader>(r: &R, collection: &str) -> Result<Option<KeyTypes>> {
    if r.kind(collection)?.is_none() {
        return Ok(None);
    }
    let first = r
        .key_range(collection, Bound::Unbounded, Bound::Unbounded, false)?
        .next_key()?;
    first.map(|k| key_types_of(&k)).transpose()
}

/// Refuses a key whose types differ from the table's; returns the key's types. The
/// transaction remembers the types it has checked (while the table is not empty, see
/// [`remember_types`]), so a batch reads the first key once.
fn check_types(
    txn: &mut WriteTxn,
    collection: &str,
    pk: &Datum,
    sk: Option<&Datum>,
) -> Result<KeyTypes> {
    let given = KeyTypes {
        pk: part_type(pk, "partition key")?,
        sk: sk.map(|s| part_type(s, "sort key")).transpose()?,
    };
    let known = txn
        .colls
        .get(collection)
        .filter(|st| st.rec.count > 0)
        .and_then(|st| st.table_keys);
    let have = match known {
        Some(have) => Some(have),
        None => key_types(&*txn, collection)?,
    };
    match have {
        Some(have) if have != given => Err(Error::invalid(format!(
            "this table has {}; got {} (a table's key types are fixed by its first item)",
            have.describe(),
            given.describe()
        ))),
        _ => Ok(given),
    }
}

/// Records the key types a write into `collection` has just used.
fn remember_types(txn: &mut WriteTxn, collection: &str, types: KeyTypes) {
    if let Some(st) = txn.colls.get_mut(collection) {
        st.table_keys = Some(types);
    }
}

/// A condition on the sort keys of a partition.
#[derive(Clone, Debug, PartialEq)]
pub enum SortCondition {
    /// Equal to the value.
    Eq(Datum),
    /// Below the value.
    Lt(Datum),
    /// At or below the value.
    Le(Datum),
    /// Above the value.
    Gt(Datum),
    /// At or above the value.
    Ge(Datum),
    /// From the first value to the second, both included.
    Between(Datum, Datum),
    /// A string or bytes sort key that starts with the value.
    BeginsWith(Datum),
}

impl SortCondition {
    fn values(&self) -> Vec<&Datum> {
        match self {
            SortCondition::Eq(v)
            | SortCondition::Lt(v)
            | SortCondition::Le(v)
            | SortCondition::Gt(v)
            | SortCondition::Ge(v)
            | SortCondition::BeginsWith(v) => vec![v],
            SortCondition::Between(a, b) => vec![a, b],
        }
    }
}

type Range = (Bound<Vec<u8>>, Bound<Vec<u8>>);

/// The key range of the items of partition `pk` whose sort keys meet `cond` (all of the
/// partition's items when None).
fn partition_range(pk: &Datum, cond: Option<&SortCondition>) -> Result<Range> {
    let p = encode_key(pk, None)?;
    let end = || keys::prefix_successor(&p).map_or(Bound::Unbounded, Bound::Excluded);
    let at = |sk: &Datum| encode_key(pk, Some(sk));
    Ok(match cond {
        None => (Bound::Included(p.clone()), end()),
        Some(SortCondition::Eq(v)) => {
            let k = at(v)?;
            (Bound::Included(k.clone()), Bound::Included(k))
        }
        Some(SortCondition::Lt(v)) => (Bound::Included(p.clone()), Bound::Excluded(at(v)?)),
        Some(SortCondition::Le(v)) => (Bound::Included(p.clone()), Bound::Included(at(v)?)),
        Some(SortCondition::Gt(v)) => (Bound::Excluded(at(v)?), end()),
        Some(SortCondition::Ge(v)) => (Bound::Included(at(v)?), end()),
        Some(SortCondition::Between(a, b)) => (Bound::Included(at(a)?), Bound::Included(at(b)?)),
        Some(SortCondition::BeginsWith(v)) => {
            let Some(prefix) = keys::string_prefix(v) else {
                return Err(Error::invalid(format!(
                    "begins_with takes a str or bytes prefix, got {}",
                    v.type_name()
                )));
            };
            let mut lo = p.clone();
            lo.extend_from_slice(&prefix);
            let hi = keys::prefix_successor(&lo).map_or(Bound::Unbounded, Bound::Excluded);
            (Bound::Included(lo), hi)
        }
    })
}

/// The stored item under `key`, decoded.
fn item_at<R: Reader>(r: &R, collection: &str, key: &[u8]) -> Result<Option<(Datum, Value)>> {
    match get(r, collection, key)? {
        Some(v) => Ok(Some((decode_item(&v)?, v))),
        None => Ok(None),
    }
}

fn decode_item(v: &Value) -> Result<Datum> {
    match v.header().kind {
        DocKind::Value => Datum::decode(v),
        other => Err(Error::invalid(format!(
            "a table item must be a dict-native value; this one is {} (the collection was \
             written by something other than a table)",
            other.name()
        ))),
    }
}

/// The name of a table's Expiry index. No declared index has it: those are named by their
/// fields, joined with `,`, and no field name is empty.
pub const EXPIRY_INDEX: &str = ",expiry";

/// Expired items a write to a table deletes, oldest first, on its way.
const RECLAIM_PER_WRITE: usize = 16;

fn expiry_spec() -> IndexSpec {
    IndexSpec {
        name: EXPIRY_INDEX.to_owned(),
        kind: IndexKind::Expiry,
        paths: Vec::new(),
    }
}

/// True unless the document has expired at `now`.
fn alive(v: &Value, now: u64) -> bool {
    v.header().expires_at.is_none_or(|at| at > now)
}

/// The Expiry index of table `collection`, if it has one.
fn expiry_index<R: Reader>(r: &R, collection: &str) -> Result<Option<IndexDef>> {
    if r.kind(collection)?.is_none() {
        return Ok(None);
    }
    Ok(r.indexes(collection)?
        .iter()
        .find(|d| d.spec.kind == IndexKind::Expiry)
        .cloned())
}

/// The keys of up to `max` items expired at `now`, oldest first, from the table's Expiry
/// index `def`.
fn expired_keys<R: Reader>(r: &R, def: &IndexDef, now: u64, max: usize) -> Result<Vec<Vec<u8>>> {
    let mut out = Vec::new();
    let mut cursor = Cursor::seek(r, def.root, None)?;
    while out.len() < max {
        let Some((page, i)) = cursor.next(r)? else {
            break;
        };
        let entry = btree::node::key(&page, i);
        let at = entry
            .get(..8)
            .and_then(|b| b.try_into().ok())
            .map(u64::from_be_bytes)
            .ok_or_else(|| Error::corrupt("an expiry index entry without a time"))?;
        if at > now {
            break;
        }
        let stored = TreeValue::from_leaf(r, &page, i)?;
        out.push(crate::index::entry_pk(&def.spec, true, entry, &stored)?.to_vec());
    }
    Ok(out)
}

/// Items of table `collection` that have expired but still take space.
pub fn expired<R: Reader>(r: &R, collection: &str) -> Result<u64> {
    match expiry_index(r, collection)? {
        Some(def) => expired_in(r, &def),
        None => Ok(0),
    }
}

fn expired_in<R: Reader>(r: &R, def: &IndexDef) -> Result<u64> {
    let now = crate::clock::now_micros();
    Ok(expired_keys(r, def, now, usize::MAX)?.len() as u64)
}

/// Deletes up to `max` expired items of table `collection` (oldest first); returns how
/// many it deleted.
pub fn reclaim(txn: &mut WriteTxn, collection: &str, max: usize) -> Result<usize> {
    let Some(def) = expiry_index(&*txn, collection)? else {
        return Ok(0);
    };
    let now = crate::clock::now_micros();
    let keys = expired_keys(&*txn, &def, now, max)?;
    for key in &keys {
        txn.delete_key(collection, key)?;
    }
    Ok(keys.len())
}

/// The item under `key` (an encoded key) unless it is missing or expired.
pub fn get<R: Reader>(r: &R, collection: &str, key: &[u8]) -> Result<Option<Value>> {
    let now = crate::clock::now_micros();
    Ok(r.get_key(collection, key)?.filter(|v| alive(v, now)))
}

/// True when `expr` reads the attributes `pk` or `sk` (so [`seen`] must add the key values).
fn names_key(expr: &Expr) -> bool {
    let mut paths = Vec::new();
    expr.paths(&mut paths);
    paths
        .iter()
        .any(|p| matches!(p.split('.').next(), Some("pk" | "sk")))
}

/// The document a condition or filter sees: the item, with `pk` and `sk` set to the key
/// values (when the expression reads them, `names_key`) unless the item has attributes of
/// those names; a missing item is empty.
fn seen<'a>(item: Option<&'a Datum>, names_key: bool, key: &[u8]) -> Result<Cow<'a, Datum>> {
    let Some(item) = item else {
        return Ok(Cow::Owned(Datum::Map(Vec::new())));
    };
    if !names_key {
        return Ok(Cow::Borrowed(item));
    }
    let Datum::Map(entries) = item else {
        return Ok(Cow::Borrowed(item));
    };
    let (pk, sk) = decode_key(key)?;
    let mut entries = entries.clone();
    for (name, value) in [("pk", Some(pk)), ("sk", sk)] {
        if let Some(value) = value {
            if !entries.iter().any(|(n, _)| n == name) {
                entries.push((name.to_owned(), value));
            }
        }
    }
    Ok(Cow::Owned(Datum::Map(entries)))
}

fn require(cond: Option<&Expr>, item: Option<&Datum>, key: &[u8]) -> Result<()> {
    let Some(cond) = cond else { return Ok(()) };
    if cond.matches(seen(item, names_key(cond), key)?.as_ref()) {
        return Ok(());
    }
    Err(Error::ConditionFailed(format!(
        "the condition does not hold for the {} item at {}; nothing was written",
        if item.is_some() { "stored" } else { "missing" },
        describe_key(key)
    )))
}

fn describe_key(key: &[u8]) -> String {
    match decode_key(key) {
        Ok((pk, Some(sk))) => format!("pk={pk}, sk={sk}"),
        Ok((pk, None)) => format!("pk={pk}"),
        Err(_) => crate::codec::show_key(key),
    }
}

/// Stores the item (a dict-native payload) under `(pk, sk)` of table `collection` (created
/// if missing) when `cond` holds for what is stored there now; [`Error::ConditionFailed`]
/// otherwise, with nothing written.
///
/// The item expires at `expires_at` (microseconds since the Unix epoch) when given.
pub fn put(
    txn: &mut WriteTxn,
    collection: &str,
    pk: &Datum,
    sk: Option<&Datum>,
    payload: &[u8],
    cond: Option<&Expr>,
    expires_at: Option<u64>,
) -> Result<()> {
    let key = encode_key(pk, sk)?;
    let types = check_types(txn, collection, pk, sk)?;
    if cond.is_some() {
        let old = item_at(&*txn, collection, &key)?;
        require(cond, old.as_ref().map(|(d, _)| d), &key)?;
    }
    txn.create_collection(collection, CollectionKind::Keyed)?;
    if expires_at.is_some() {
        txn.ensure_index(collection, &expiry_spec())?;
    }
    txn.put_key_doc_until(collection, &key, DocKind::Value, 0, payload, expires_at)?;
    remember_types(txn, collection, types);
    reclaim(txn, collection, RECLAIM_PER_WRITE)?;
    Ok(())
}

/// Removes the item under `(pk, sk)` when `cond` holds for it (a missing item is seen as
/// empty); returns whether there was one.
pub fn delete(
    txn: &mut WriteTxn,
    collection: &str,
    pk: &Datum,
    sk: Option<&Datum>,
    cond: Option<&Expr>,
) -> Result<bool> {
    let key = encode_key(pk, sk)?;
    if txn.kind(collection)?.is_none() {
        require(cond, None, &key)?;
        return Ok(false);
    }
    let expiring = expiry_index(&*txn, collection)?.is_some();
    let was_alive = if cond.is_some() || expiring {
        let old = item_at(&*txn, collection, &key)?;
        require(cond, old.as_ref().map(|(d, _)| d), &key)?;
        Some(old.is_some())
    } else {
        None
    };
    let removed = txn.delete_key(collection, &key)?;
    reclaim(txn, collection, RECLAIM_PER_WRITE)?;
    // An expired item was already gone for every reader.
    Ok(was_alive.unwrap_or(removed))
}

/// Changes to apply to an item, in this order: `set` (attribute path → value), `remove`
/// (paths), `add` (path → number added to the one there, which is 0 when missing).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Update {
    /// Attributes to set.
    pub set: Vec<(String, Datum)>,
    /// Attributes to remove (a missing one is no error).
    pub remove: Vec<String>,
    /// Numbers to add.
    pub add: Vec<(String, Datum)>,
}

/// Applies `update` to the item under `(pk, sk)` (an empty item when missing, so an update
/// creates it) when `cond` holds, stores it and returns it.
pub fn update(
    txn: &mut WriteTxn,
    collection: &str,
    pk: &Datum,
    sk: Option<&Datum>,
    update: &Update,
    cond: Option<&Expr>,
) -> Result<Datum> {
    let key = encode_key(pk, sk)?;
    let types = check_types(txn, collection, pk, sk)?;
    let old = item_at(&*txn, collection, &key)?;
    require(cond, old.as_ref().map(|(d, _)| d), &key)?;
    // The item keeps its expiry time (an expired one is gone: the update starts afresh).
    let expires_at = old.as_ref().and_then(|(_, v)| v.header().expires_at);
    let mut item = old.map_or(Datum::Map(Vec::new()), |(d, _)| d);
    for (path, value) in &update.set {
        *slot(&mut item, path)?.ok_or_else(|| missing_parent(path))? = value.clone();
    }
    for path in &update.remove {
        remove(&mut item, path)?;
    }
    for (path, by) in &update.add {
        let Some(place) = slot(&mut item, path)? else {
            return Err(missing_parent(path));
        };
        *place = add(place, by, path)?;
    }
    let mut payload = Vec::new();
    item.encode(&mut payload);
    txn.create_collection(collection, CollectionKind::Keyed)?;
    txn.put_key_doc_until(collection, &key, DocKind::Value, 0, &payload, expires_at)?;
    remember_types(txn, collection, types);
    reclaim(txn, collection, RECLAIM_PER_WRITE)?;
    Ok(item)
}

fn missing_parent(path: &str) -> Error {
    Error::invalid(format!(
        "update path {path:?} goes through an attribute that is missing or not a dict"
    ))
}

/// The attribute at dotted `path` of `item` (created as Null when its parent dict exists);
/// None when a parent is missing or not a dict.
fn slot<'a>(item: &'a mut Datum, path: &str) -> Result<Option<&'a mut Datum>> {
    if path.is_empty() || path.split('.').any(str::is_empty) {
        return Err(Error::invalid(format!(
            "update path {path:?} must be attribute names joined by '.'"
        )));
    }
    let mut at = item;
    for part in path.split('.') {
        let Datum::Map(entries) = at else {
            return Ok(None);
        };
        let i = match entries.iter().position(|(n, _)| n == part) {
            Some(i) => i,
            None => {
                entries.push((part.to_owned(), Datum::Null));
                entries.len() - 1
            }
        };
        at = &mut entries[i].1;
    }
    Ok(Some(at))
}

fn remove(item: &mut Datum, path: &str) -> Result<()> {
    let (parent, name) = match path.rsplit_once('.') {
        Some((parent, name)) => (Some(parent), name),
        None => (None, path),
    };
    if name.is_empty() {
        return Err(missing_parent(path));
    }
    let holder = match parent {
        None => Some(item),
        Some(parent) => {
            // Removing under a missing parent removes nothing.
            let mut at = Some(item);
            for part in parent.split('.') {
                at = match at {
                    Some(Datum::Map(entries)) => {
                        entries.iter_mut().find(|(n, _)| n == part).map(|(_, v)| v)
                    }
                    _ => None,
                };
            }
            at
        }
    };
    if let Some(Datum::Map(entries)) = holder {
        entries.retain(|(n, _)| n != name);
    }
    Ok(())
}

fn add(current: &Datum, by: &Datum, path: &str) -> Result<Datum> {
    Ok(match (current, by) {
        (Datum::Null, Datum::Int(_) | Datum::Float(_) | Datum::Set(_)) => by.clone(),
        (Datum::Set(have), Datum::Set(more)) => {
            let kind = |s: &[Datum]| s.first().map(std::mem::discriminant);
            let numbers = |s: &[Datum]| {
                s.iter()
                    .all(|d| matches!(d, Datum::Int(_) | Datum::Float(_)))
            };
            let same_kind = have.is_empty()
                || more.is_empty()
                || kind(have) == kind(more)
                || (numbers(have) && numbers(more));
            if !same_kind {
                return Err(Error::invalid(format!(
                    "add at {path:?}: the set holds {} members, the added set {}",
                    have[0].type_name(),
                    more[0].type_name()
                )));
            }
            let mut union = have.clone();
            for m in more {
                if !union
                    .iter()
                    .any(|h| crate::query::compare(h, m) == Some(std::cmp::Ordering::Equal))
                {
                    union.push(m.clone());
                }
            }
            Datum::Set(union)
        }
        (Datum::Int(a), Datum::Int(b)) => Datum::Int(a.checked_add(*b).ok_or_else(|| {
            Error::invalid(format!(
                "adding {b} to {a} at {path:?} overflows a 64-bit integer"
            ))
        })?),
        (Datum::Int(a), Datum::Float(b)) => Datum::Float(*a as f64 + b),
        (Datum::Float(a), Datum::Int(b)) => Datum::Float(a + *b as f64),
        (Datum::Float(a), Datum::Float(b)) => Datum::Float(a + b),
        (_, Datum::Int(_) | Datum::Float(_) | Datum::Set(_)) => {
            return Err(Error::invalid(format!(
                "add of a {} needs a {} (or nothing) at {path:?}; it holds a {}",
                by.type_name(),
                if matches!(by, Datum::Set(_)) {
                    "set"
                } else {
                    "number"
                },
                current.type_name()
            )))
        }
        _ => {
            return Err(Error::invalid(format!(
                "add takes a number to add, or a set of members to add, at {path:?}; got {}",
                by.type_name()
            )))
        }
    })
}

/// One page of a query or scan: the items (key and stored value) and, when more items
/// match after them, the key of the last one (to pass as `start_after`).
#[derive(Debug)]
pub struct Page {
    /// The items, in key order (or reverse).
    pub items: Vec<(Vec<u8>, Value)>,
    /// The stored key of the last item when more would follow; None at the end.
    pub last_key: Option<Vec<u8>>,
}

/// Which items a query or a scan returns.
#[derive(Debug, Default)]
pub struct Select<'a> {
    /// Only items this holds for (seen as conditions see them).
    pub filter: Option<&'a Expr>,
    /// Newest key first.
    pub reverse: bool,
    /// At most this many items (after the filter).
    pub limit: Option<usize>,
    /// Only items after this stored key (in the direction of the scan).
    pub start_after: Option<&'a [u8]>,
}

impl Select<'_> {
    /// `range` without what `start_after` skips (in the direction of the scan).
    fn narrow(&self, (lo, hi): Range) -> Range {
        let Some(after) = self.start_after else {
            return (lo, hi);
        };
        let after = Bound::Excluded(after.to_vec());
        if self.reverse {
            (lo, tighter(hi, after, true))
        } else {
            (tighter(lo, after, false), hi)
        }
    }
}

impl Page {
    fn empty() -> Page {
        Page {
            items: Vec::new(),
            last_key: None,
        }
    }
}

/// Gathers a page as a walk offers items: those alive now that the filter holds for, up to
/// the limit; when one more matches, the page ends with the position of its last item.
struct Gather<'a> {
    filter: Option<(&'a Expr, bool)>,
    limit: usize,
    now: u64,
    page: Page,
    /// Where the walk was at the last item taken, when that is not the item's key.
    last_at: Option<Vec<u8>>,
}

impl<'a> Gather<'a> {
    fn new(select: &Select<'a>) -> Self {
        Gather {
            filter: select.filter.map(|f| (f, names_key(f))),
            limit: select.limit.unwrap_or(usize::MAX),
            now: crate::clock::now_micros(),
            page: Page::empty(),
            last_at: None,
        }
    }

    /// Offers the item under `key`, found at `at` in the walk (an index entry; None: the
    /// key itself). False once the page is full: the walk stops.
    fn offer(&mut self, key: &[u8], value: Value, at: Option<&[u8]>) -> Result<bool> {
        if !alive(&value, self.now) {
            return Ok(true);
        }
        if let Some((filter, names_key)) = self.filter {
            let item = decode_item(&value)?;
            if !filter.matches(seen(Some(&item), names_key, key)?.as_ref()) {
                return Ok(true);
            }
        }
        if self.page.items.len() == self.limit {
            let last_key = self.page.items.last().map(|(k, _)| k.clone());
            self.page.last_key = self.last_at.take().or(last_key);
            return Ok(false);
        }
        self.page.items.push((key.to_vec(), value));
        self.last_at = at.map(<[u8]>::to_vec);
        Ok(true)
    }
}

/// The items of partition `pk` whose sort keys meet `cond`.
pub fn query<R: Reader>(
    r: &R,
    collection: &str,
    pk: &Datum,
    cond: Option<&SortCondition>,
    select: &Select<'_>,
) -> Result<Page> {
    let types = key_types(r, collection)?;
    if let (Some(types), Some(cond)) = (types, cond) {
        check_condition(types, cond)?;
    }
    let range = partition_range(pk, cond)?;
    if types.is_some_and(|t| PartType::of(pk) != Some(t.pk)) {
        // A partition key of another type names no partition of this table.
        return Ok(Page::empty());
    }
    select_in(r, collection, range, select)
}

/// Refuses a sort-key condition on a table without sort keys, or comparing with a value of
/// another type than the sort keys (`begins_with` only for str and bytes sort keys).
fn check_condition(types: KeyTypes, cond: &SortCondition) -> Result<()> {
    let Some(sk) = types.sk else {
        return Err(Error::invalid(
            "this table has no sort keys; query it by partition key alone",
        ));
    };
    if matches!(cond, SortCondition::BeginsWith(_)) && sk == PartType::Int {
        return Err(Error::invalid(
            "begins_with needs str or bytes sort keys; this table's sort keys are int",
        ));
    }
    for v in cond.values() {
        let t = part_type(v, "a sort key condition's value")?;
        if t != sk {
            return Err(Error::invalid(format!(
                "this table's sort keys are {}; the condition compares with a {}",
                sk.name(),
                t.name()
            )));
        }
    }
    Ok(())
}

/// The items of every partition, in key order.
pub fn scan<R: Reader>(r: &R, collection: &str, select: &Select<'_>) -> Result<Page> {
    select_in(r, collection, (Bound::Unbounded, Bound::Unbounded), select)
}

fn select_in<R: Reader>(
    r: &R,
    collection: &str,
    (lo, hi): Range,
    select: &Select<'_>,
) -> Result<Page> {
    if r.kind(collection)?.is_none() {
        return Ok(Page::empty());
    }
    let (lo, hi) = select.narrow((lo, hi));
    let mut gather = Gather::new(select);
    let (lo, hi) = (
        lo.as_ref().map(Vec::as_slice),
        hi.as_ref().map(Vec::as_slice),
    );
    for entry in r.key_range(collection, lo, hi, select.reverse)? {
        let (key, value) = entry?;
        if !gather.offer(&key, value, None)? {
            break;
        }
    }
    Ok(gather.page)
}

/// The narrower of a range's end and a `start_after` bound (`upper`: the high end).
fn tighter(end: Bound<Vec<u8>>, after: Bound<Vec<u8>>, upper: bool) -> Bound<Vec<u8>> {
    let (Bound::Included(e) | Bound::Excluded(e)) = &end else {
        return after;
    };
    let Bound::Excluded(a) = &after else {
        return end;
    };
    let after_is_tighter = if upper { a <= e } else { a >= e };
    if after_is_tighter {
        after
    } else {
        end
    }
}

/// Items in partition `pk` (None: in the table).
pub fn count<R: Reader>(r: &R, collection: &str, pk: Option<&Datum>) -> Result<u64> {
    if r.kind(collection)?.is_none() {
        return Ok(0);
    }
    let expiry = expiry_index(r, collection)?;
    let Some(pk) = pk else {
        let stored = r.count(collection)?;
        return Ok(match &expiry {
            Some(def) => stored - expired_in(r, def)?,
            None => stored,
        });
    };
    let (lo, hi) = partition_range(pk, None)?;
    let mut n = 0;
    let mut items = r.key_range(
        collection,
        lo.as_ref().map(Vec::as_slice),
        hi.as_ref().map(Vec::as_slice),
        false,
    )?;
    if expiry.is_some() {
        let now = crate::clock::now_micros();
        for item in items {
            n += u64::from(alive(&item?.1, now));
        }
        return Ok(n);
    }
    while items.next_key()?.is_some() {
        n += 1;
    }
    Ok(n)
}

/// The index of a table on the attributes `fields` (one: a standard index named by the
/// field; several: a composite index named by the fields joined with `,`).
pub fn index_spec(fields: &[String]) -> Result<IndexSpec> {
    let spec = IndexSpec {
        name: fields.join(","),
        kind: if fields.len() == 1 {
            IndexKind::Standard
        } else {
            IndexKind::Composite
        },
        paths: fields.to_vec(),
    };
    crate::index::check_spec(&spec)?;
    Ok(spec)
}

/// Makes sure table `collection` exists with the index `spec` (built from the items there
/// now, then kept by every write).
pub fn ensure_index(txn: &mut WriteTxn, collection: &str, spec: &IndexSpec) -> Result<bool> {
    txn.create_collection(collection, CollectionKind::Keyed)?;
    txn.ensure_index(collection, spec)
}

/// The encoded index value(s) of a condition's operand: a list is a tuple of values (a
/// prefix of a composite index's), anything else one value.
fn index_value(d: &Datum) -> Result<Vec<u8>> {
    match d {
        Datum::List(values) => keys::encode(values),
        one => keys::encode(std::slice::from_ref(one)),
    }
}

/// The range of index entries whose values meet `cond`. Open ends stay within the
/// operand's type (numbers with numbers, strings with strings), as a comparison does.
fn index_range(cond: Option<&SortCondition>) -> Result<Range> {
    let Some(cond) = cond else {
        // Every entry but those of items without the (first) attribute, or None there.
        let null = keys::encode(&[Datum::Null])?;
        let lo = keys::prefix_successor(&null).map_or(Bound::Unbounded, Bound::Included);
        return Ok((lo, Bound::Unbounded));
    };
    let after = |k: &[u8]| keys::prefix_successor(k).map_or(Bound::Unbounded, Bound::Excluded);
    let type_start = |k: &[u8]| Bound::Included(k[..1].to_vec());
    let type_end = |k: &[u8]| after(&k[..1]);
    Ok(match cond {
        SortCondition::Eq(v) => {
            let k = index_value(v)?;
            (Bound::Included(k.clone()), after(&k))
        }
        SortCondition::Lt(v) => {
            let k = index_value(v)?;
            (type_start(&k), Bound::Excluded(k))
        }
        SortCondition::Le(v) => {
            let k = index_value(v)?;
            (type_start(&k), after(&k))
        }
        SortCondition::Gt(v) => {
            let k = index_value(v)?;
            let lo = keys::prefix_successor(&k).map_or(Bound::Unbounded, Bound::Included);
            (lo, type_end(&k))
        }
        SortCondition::Ge(v) => {
            let k = index_value(v)?;
            (Bound::Included(k.clone()), type_end(&k))
        }
        SortCondition::Between(a, b) => {
            let (a, b) = (index_value(a)?, index_value(b)?);
            (Bound::Included(a), after(&b))
        }
        SortCondition::BeginsWith(v) => {
            let Some(prefix) = keys::string_prefix(v) else {
                return Err(Error::invalid(format!(
                    "begins_with takes a str or bytes prefix, got {}",
                    v.type_name()
                )));
            };
            (Bound::Included(prefix.clone()), after(&prefix))
        }
    })
}

/// The items of table `collection` whose values in index `index` meet `cond` (when None,
/// every item with a value other than None in the index's first attribute), in index
/// order. A page's `last_key` is the index entry of its last item (pass it back as
/// `start_after`).
pub fn query_index<R: Reader>(
    r: &R,
    collection: &str,
    index: &str,
    cond: Option<&SortCondition>,
    select: &Select<'_>,
) -> Result<Page> {
    if r.kind(collection)?.is_none() {
        return Err(Error::NotFound(format!(
            "table {collection:?} has no index named {index:?} (it has no items yet)"
        )));
    }
    let def = r.index(collection, index)?;
    let bounds = KeyBounds::owned(select.narrow(index_range(cond)?));
    let mut gather = Gather::new(select);
    if bounds.is_empty() {
        return Ok(gather.page);
    }
    let mut cursor = bounds.cursor(r, def.root, select.reverse)?;
    loop {
        let step = if select.reverse {
            cursor.prev(r)?
        } else {
            cursor.next(r)?
        };
        let Some((page, i)) = step else { break };
        let entry = btree::node::key(&page, i);
        let past = if select.reverse {
            bounds.below_lo(entry)
        } else {
            bounds.above_hi(entry)
        };
        if past {
            break;
        }
        let stored = TreeValue::from_leaf(r, &page, i)?;
        let pk = crate::index::entry_pk(&def.spec, true, entry, &stored)?;
        let Some(value) = r.get_key(collection, pk)? else {
            return Err(Error::corrupt(format!(
                "index {index:?} of table {collection:?} lists an item that is not there"
            )));
        };
        if !gather.offer(pk, value, Some(entry))? {
            break;
        }
    }
    Ok(gather.page)
}
