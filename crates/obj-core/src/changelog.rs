//! The change log: when a database keeps one, every commit appends one record to it, inside
//! the same commit (the record's pages are dirty pages of the transaction like any other),
//! so a commit is never on disk without its record nor a record without its commit.
//!
//! The log is a B-tree whose root, settings and counters are one catalog record
//! ([`catalog::CHANGE_LOG_KEY`]). Record `seq` is stored under the keys `(seq, 0)` (its
//! header: time, metadata, the collection names its entries use) and `(seq, 1..)` (its
//! entries, cut into parts of about [`PART_BYTES`] at entry boundaries), each key the
//! big-endian `seq` and part number, so the tree is in commit order and a reader walks it
//! with one cursor. `seq` starts at 1 and grows by one per recorded commit, whatever
//! happens to the file (reopen, checkpoint, compaction, backup).
//!
//! Retention moves `oldest` (the first record readers may ask for) forward; the keys below
//! it are deleted a bounded number per commit, so trimming never rewrites live data and a
//! commit's cost stays proportional to its own changes.
//!
//! This module is the format and the capture; replaying records onto another database and
//! reverting one are `replay.rs`, above the write transaction.

use crate::btree::{self, Cursor, PageRead, PageWrite, TreeValue};
use crate::catalog::{self, IndexKind, IndexSpec, NameMap};
use crate::codec::wire::{put_bytes, put_uvarint, WireReader};
use crate::codec::Schema;
use crate::error::{Error, Result};
use crate::reader::{Reader, Value};
use std::sync::Arc;

/// Entry bytes per part before the next entry starts a new part.
const PART_BYTES: usize = 8 * 1024;

/// Keys of superseded records deleted per commit, besides two per part the commit wrote.
const TRIM_BUDGET: usize = 64;

/// Records retention may pass over by age in one commit (later commits go on).
const AGE_STEPS: usize = 4096;

/// What a record keeps of each changed document (the names follow DynamoDB streams).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Images {
    /// The collection, the key and the operation only.
    Keys,
    /// As `Keys`, with the document as written (none for a delete).
    New,
    /// As `Keys`, with the document as it was before (none for an insert).
    Old,
    /// Both images.
    #[default]
    Both,
}

impl Images {
    /// The name `changes=` takes and `stat` shows.
    pub fn name(self) -> &'static str {
        match self {
            Images::Keys => "keys",
            Images::New => "new",
            Images::Old => "old",
            Images::Both => "both",
        }
    }

    /// The images named `name` ("keys", "new", "old" or "both").
    pub fn parse(name: &str) -> Result<Images> {
        Ok(match name {
            "keys" => Images::Keys,
            "new" => Images::New,
            "old" => Images::Old,
            "both" => Images::Both,
            other => {
                return Err(Error::invalid(format!(
                    "changes={other:?} is not a kind of change image: use \"keys\", \"new\", \
                     \"old\" or \"both\""
                )))
            }
        })
    }

    fn code(self) -> u64 {
        match self {
            Images::Keys => 0,
            Images::New => 1,
            Images::Old => 2,
            Images::Both => 3,
        }
    }

    fn of(code: u64) -> Result<Images> {
        Ok(match code {
            0 => Images::Keys,
            1 => Images::New,
            2 => Images::Old,
            3 => Images::Both,
            _ => return Err(Error::corrupt(format!("change log: unknown images {code}"))),
        })
    }

    /// Whether records keep the document as it was.
    pub fn keeps_old(self) -> bool {
        matches!(self, Images::Old | Images::Both)
    }

    /// Whether records keep the document as written.
    pub fn keeps_new(self) -> bool {
        matches!(self, Images::New | Images::Both)
    }
}

/// How much of the log later commits keep: at most `max_records` records and none older
/// than `max_age_micros` (the newest record is always kept). None: no limit.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Retention {
    /// Records kept, at least 1.
    pub max_records: Option<u64>,
    /// Age of the oldest record kept, in microseconds.
    pub max_age_micros: Option<u64>,
}

/// A change log's settings.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct LogSettings {
    /// What each record keeps of a changed document.
    pub images: Images,
    /// How long records are kept.
    pub retention: Retention,
}

impl LogSettings {
    /// Refuses settings that cannot work (a retention of zero records).
    pub fn check(&self) -> Result<()> {
        if self.retention.max_records == Some(0) {
            return Err(Error::invalid(
                "retention max_records must be at least 1 (None keeps every record)",
            ));
        }
        Ok(())
    }
}

/// The log as a snapshot sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct LogInfo {
    /// The settings.
    pub settings: LogSettings,
    /// The oldest record kept (`next_seq` when the log is empty).
    pub oldest: u64,
    /// The `seq` the next commit's record gets; the last record is `next_seq - 1`.
    pub next_seq: u64,
}

impl LogInfo {
    /// Records kept.
    pub fn records(&self) -> u64 {
        self.next_seq - self.oldest
    }
}

/// The catalog record of the log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct LogState {
    pub(crate) settings: LogSettings,
    /// Root page of the log tree.
    pub(crate) root: u64,
    pub(crate) next_seq: u64,
    pub(crate) oldest: u64,
    /// Commit time of record `oldest` (0 while the log is empty).
    pub(crate) oldest_time: u64,
    /// Every key below `(trimmed, 0)` has been deleted.
    pub(crate) trimmed: u64,
}

impl LogState {
    pub(crate) fn new(settings: LogSettings, root: u64, next_seq: u64) -> Self {
        LogState {
            settings,
            root,
            next_seq,
            oldest: next_seq,
            oldest_time: 0,
            trimmed: next_seq,
        }
    }

    pub(crate) fn info(&self) -> LogInfo {
        LogInfo {
            settings: self.settings,
            oldest: self.oldest,
            next_seq: self.next_seq,
        }
    }

    fn encode(&self) -> Vec<u8> {
        let mut out = vec![1u8];
        put_uvarint(&mut out, self.settings.images.code());
        put_opt(&mut out, self.settings.retention.max_records);
        put_opt(&mut out, self.settings.retention.max_age_micros);
        for v in [
            self.root,
            self.next_seq,
            self.oldest,
            self.oldest_time,
            self.trimmed,
        ] {
            put_uvarint(&mut out, v);
        }
        out
    }

    fn decode(bytes: &[u8]) -> Result<LogState> {
        let damaged = |e: Error| Error::corrupt(format!("change log record in the catalog: {e}"));
        let mut r = WireReader::new(bytes);
        let state = (|| {
            let version = r.u8()?;
            if version != 1 {
                return Err(Error::corrupt(format!("unknown version {version}")));
            }
            let images = Images::of(r.uvarint()?)?;
            let max_records = get_opt(&mut r)?;
            let max_age_micros = get_opt(&mut r)?;
            let state = LogState {
                settings: LogSettings {
                    images,
                    retention: Retention {
                        max_records,
                        max_age_micros,
                    },
                },
                root: r.uvarint()?,
                next_seq: r.uvarint()?,
                oldest: r.uvarint()?,
                oldest_time: r.uvarint()?,
                trimmed: r.uvarint()?,
            };
            r.finish()?;
            if state.oldest > state.next_seq || state.trimmed > state.oldest {
                return Err(Error::corrupt("counters out of order"));
            }
            Ok(state)
        })();
        state.map_err(damaged)
    }
}

fn put_opt(out: &mut Vec<u8>, v: Option<u64>) {
    match v {
        Some(v) => {
            out.push(1);
            put_uvarint(out, v);
        }
        None => out.push(0),
    }
}

fn get_opt(r: &mut WireReader<'_>) -> Result<Option<u64>> {
    Ok(match r.u8()? {
        0 => None,
        _ => Some(r.uvarint()?),
    })
}

/// The log's state in the catalog at `catalog_root`, if the database keeps one.
pub(crate) fn load<R: PageRead>(r: &R, catalog_root: u64) -> Result<Option<LogState>> {
    match btree::get(r, catalog_root, catalog::CHANGE_LOG_KEY)? {
        Some(v) => Ok(Some(LogState::decode(&v)?)),
        None => Ok(None),
    }
}

pub(crate) fn store<W: PageWrite>(w: &mut W, catalog_root: u64, state: &LogState) -> Result<()> {
    btree::put(w, catalog_root, catalog::CHANGE_LOG_KEY, &state.encode())?;
    Ok(())
}

/// Removes the log (its tree and its catalog record).
pub(crate) fn remove<W: PageWrite>(w: &mut W, catalog_root: u64, state: &LogState) -> Result<()> {
    btree::free_all(w, state.root)?;
    btree::delete(w, catalog_root, catalog::CHANGE_LOG_KEY)?;
    Ok(())
}

/// Who made a commit, why, and (for a replayed record) when.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Context {
    /// What the commit did ("create_user").
    pub action: Option<String>,
    /// Who made it.
    pub user: Option<String>,
    /// More metadata, in the self-describing encoding (a map, as the binding writes it).
    pub meta: Option<Vec<u8>>,
    /// The commit time to record instead of now (replaying another database's record).
    pub time_micros: Option<u64>,
}

impl Context {
    /// True when nothing is set.
    pub fn is_empty(&self) -> bool {
        self.action.is_none()
            && self.user.is_none()
            && self.meta.is_none()
            && self.time_micros.is_none()
    }
}

/// What an entry did.
#[derive(Clone, Debug, PartialEq)]
pub enum Op {
    /// A document was stored where none was.
    Insert,
    /// A document replaced another.
    Update,
    /// A document was removed.
    Delete,
    /// A schema was stored (a replica needs it before the documents it encodes).
    Schema(Schema),
    /// A schema version was removed.
    DropSchema(u32),
    /// An index was created or rebuilt.
    Index(IndexSpec),
    /// An empty collection was created.
    Create(catalog::CollectionKind),
}

impl Op {
    /// The name `obj.Change` shows ("insert", "update", "delete", "schema", ...).
    pub fn name(&self) -> &'static str {
        match self {
            Op::Insert => "insert",
            Op::Update => "update",
            Op::Delete => "delete",
            Op::Schema(_) => "schema",
            Op::DropSchema(_) => "drop_schema",
            Op::Index(_) => "index",
            Op::Create(_) => "create",
        }
    }

    /// True for a change to a document (insert, update, delete).
    pub fn is_data(&self) -> bool {
        matches!(self, Op::Insert | Op::Update | Op::Delete)
    }
}

/// One change of a record.
#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    /// The collection changed.
    pub collection: Arc<str>,
    /// What happened.
    pub op: Op,
    /// For a document change: true when `key` is a keyed collection's key, false when it is
    /// an id (8 bytes, big-endian).
    pub keyed: bool,
    /// The document's key (empty for other entries).
    pub key: Vec<u8>,
    /// The document before, as stored (header and payload), if the log keeps old images.
    pub old: Option<Vec<u8>>,
    /// The document after, as stored, if the log keeps new images.
    pub new: Option<Vec<u8>>,
}

impl Entry {
    /// The document id, for a change in an id collection.
    pub fn id(&self) -> Option<u64> {
        match (self.keyed, <[u8; 8]>::try_from(self.key.as_slice())) {
            (false, Ok(b)) => Some(u64::from_be_bytes(b)),
            _ => None,
        }
    }

    /// The old image as a stored value (payload decompressed).
    pub fn old_value(&self) -> Result<Option<Value>> {
        self.old.as_deref().map(image).transpose()
    }

    /// The new image as a stored value (payload decompressed).
    pub fn new_value(&self) -> Result<Option<Value>> {
        self.new.as_deref().map(image).transpose()
    }
}

/// A stored document image (header and payload, as an entry keeps it) as a value, its
/// payload decompressed.
pub fn image(bytes: &[u8]) -> Result<Value> {
    Value::from_tree(TreeValue::owned(bytes.to_vec()))
}

/// One commit's record.
#[derive(Clone, Debug, PartialEq)]
pub struct Record {
    /// Its number: gap-free, from 1.
    pub seq: u64,
    /// Commit time, microseconds since the Unix epoch (UTC).
    pub time_micros: u64,
    /// Who, what and why (`time_micros` unset).
    pub context: Context,
    /// The changes, in the order the transaction made them.
    pub entries: Vec<Entry>,
}

const OP_INSERT: u8 = 1;
const OP_UPDATE: u8 = 2;
const OP_DELETE: u8 = 3;
const OP_SCHEMA: u8 = 4;
const OP_DROP_SCHEMA: u8 = 5;
const OP_INDEX: u8 = 6;
const OP_CREATE: u8 = 7;
/// Set on a document change of a keyed collection.
const OP_KEYED: u8 = 0x80;

const HAS_OLD: u8 = 1;
const HAS_NEW: u8 = 2;

/// Appends one entry's bytes.
fn encode_entry(out: &mut Vec<u8>, name: u32, entry: EntryRef<'_>) {
    match entry {
        EntryRef::Data {
            op,
            keyed,
            key,
            old,
            new,
        } => {
            out.push(op | if keyed { OP_KEYED } else { 0 });
            put_uvarint(out, u64::from(name));
            put_bytes(out, key);
            let flags =
                if old.is_some() { HAS_OLD } else { 0 } | if new.is_some() { HAS_NEW } else { 0 };
            out.push(flags);
            for image in [old, new].into_iter().flatten() {
                put_bytes(out, image);
            }
        }
        EntryRef::Schema(schema) => {
            out.push(OP_SCHEMA);
            put_uvarint(out, u64::from(name));
            put_bytes(out, &schema.to_bytes());
        }
        EntryRef::DropSchema(version) => {
            out.push(OP_DROP_SCHEMA);
            put_uvarint(out, u64::from(name));
            put_uvarint(out, u64::from(version));
        }
        EntryRef::Index(spec) => {
            out.push(OP_INDEX);
            put_uvarint(out, u64::from(name));
            put_bytes(out, spec.name.as_bytes());
            out.push(spec.kind.code());
            put_uvarint(out, spec.paths.len() as u64);
            for p in &spec.paths {
                put_bytes(out, p.as_bytes());
            }
        }
        EntryRef::Create(kind) => {
            out.push(OP_CREATE);
            put_uvarint(out, u64::from(name));
            put_uvarint(out, kind_code(kind));
        }
    }
}

fn kind_code(kind: catalog::CollectionKind) -> u64 {
    match kind {
        catalog::CollectionKind::Keyed => 1,
        _ => 0,
    }
}

/// An entry about to be encoded, borrowing its parts.
#[derive(Clone, Copy)]
pub(crate) enum EntryRef<'a> {
    Data {
        op: u8,
        keyed: bool,
        key: &'a [u8],
        old: Option<&'a [u8]>,
        new: Option<&'a [u8]>,
    },
    Schema(&'a Schema),
    DropSchema(u32),
    Index(&'a IndexSpec),
    Create(catalog::CollectionKind),
}

impl<'a> EntryRef<'a> {
    fn of(e: &'a Entry) -> EntryRef<'a> {
        let data = |op| EntryRef::Data {
            op,
            keyed: e.keyed,
            key: &e.key,
            old: e.old.as_deref(),
            new: e.new.as_deref(),
        };
        match &e.op {
            Op::Insert => data(OP_INSERT),
            Op::Update => data(OP_UPDATE),
            Op::Delete => data(OP_DELETE),
            Op::Schema(s) => EntryRef::Schema(s),
            Op::DropSchema(v) => EntryRef::DropSchema(*v),
            Op::Index(spec) => EntryRef::Index(spec),
            Op::Create(kind) => EntryRef::Create(*kind),
        }
    }
}

/// Decodes one entry.
fn decode_entry(r: &mut WireReader<'_>, names: &[Arc<str>]) -> Result<Entry> {
    let tag = r.u8()?;
    let name = r.uvarint()?;
    let collection = usize::try_from(name)
        .ok()
        .and_then(|i| names.get(i))
        .cloned()
        .ok_or_else(|| Error::corrupt(format!("change record names collection #{name}")))?;
    let mut entry = Entry {
        collection,
        op: Op::Insert,
        keyed: tag & OP_KEYED != 0,
        key: Vec::new(),
        old: None,
        new: None,
    };
    entry.op = match tag & !OP_KEYED {
        op @ (OP_INSERT | OP_UPDATE | OP_DELETE) => {
            entry.key = r.bytes()?.to_vec();
            let flags = r.u8()?;
            if flags & HAS_OLD != 0 {
                entry.old = Some(r.bytes()?.to_vec());
            }
            if flags & HAS_NEW != 0 {
                entry.new = Some(r.bytes()?.to_vec());
            }
            match op {
                OP_INSERT => Op::Insert,
                OP_UPDATE => Op::Update,
                _ => Op::Delete,
            }
        }
        OP_SCHEMA => Op::Schema(
            Schema::from_bytes(r.bytes()?)
                .map_err(|e| Error::corrupt(format!("schema in a change record: {e}")))?,
        ),
        OP_DROP_SCHEMA => Op::DropSchema(
            u32::try_from(r.uvarint()?)
                .map_err(|_| Error::corrupt("schema version out of range"))?,
        ),
        OP_INDEX => {
            let name = r.str()?.to_string();
            let kind = IndexKind::of(u64::from(r.u8()?))
                .ok_or_else(|| Error::corrupt("unknown index kind in a change record"))?;
            let n = r.len(1)?;
            let mut paths = Vec::with_capacity(n);
            for _ in 0..n {
                paths.push(r.str()?.to_string());
            }
            Op::Index(IndexSpec { name, kind, paths })
        }
        OP_CREATE => Op::Create(match r.uvarint()? {
            0 => catalog::CollectionKind::Ids,
            1 => catalog::CollectionKind::Keyed,
            k => return Err(Error::corrupt(format!("unknown collection kind {k}"))),
        }),
        other => return Err(Error::corrupt(format!("unknown change entry tag {other}"))),
    };
    Ok(entry)
}

/// A record's header part: time, metadata, entry and part counts, collection names.
fn encode_header(
    out: &mut Vec<u8>,
    time: u64,
    ctx: &Context,
    entries: u64,
    parts: u64,
    names: &[&str],
) {
    out.push(1);
    put_uvarint(out, time);
    let flags = u8::from(ctx.action.is_some())
        | u8::from(ctx.user.is_some()) << 1
        | u8::from(ctx.meta.is_some()) << 2;
    out.push(flags);
    for s in [ctx.action.as_deref(), ctx.user.as_deref()]
        .into_iter()
        .flatten()
    {
        put_bytes(out, s.as_bytes());
    }
    if let Some(meta) = &ctx.meta {
        put_bytes(out, meta);
    }
    put_uvarint(out, entries);
    put_uvarint(out, parts);
    put_uvarint(out, names.len() as u64);
    for n in names {
        put_bytes(out, n.as_bytes());
    }
}

/// A decoded header part.
struct Header {
    time: u64,
    context: Context,
    entries: u64,
    parts: u64,
    names: Vec<Arc<str>>,
}

fn decode_header(r: &mut WireReader<'_>) -> Result<Header> {
    let version = r.u8()?;
    if version != 1 {
        return Err(Error::corrupt(format!(
            "change record of unknown version {version}"
        )));
    }
    let time = r.uvarint()?;
    let flags = r.u8()?;
    let mut context = Context::default();
    if flags & 1 != 0 {
        context.action = Some(r.str()?.to_string());
    }
    if flags & 2 != 0 {
        context.user = Some(r.str()?.to_string());
    }
    if flags & 4 != 0 {
        context.meta = Some(r.bytes()?.to_vec());
    }
    let entries = r.uvarint()?;
    let parts = r.uvarint()?;
    let n = r.len(1)?;
    let mut names = Vec::with_capacity(n);
    for _ in 0..n {
        names.push(Arc::from(r.str()?));
    }
    Ok(Header {
        time,
        context,
        entries,
        parts,
        names,
    })
}

/// The key of part `part` of record `seq`.
fn part_key(seq: u64, part: u32) -> [u8; 12] {
    let mut k = [0u8; 12];
    k[..8].copy_from_slice(&seq.to_be_bytes());
    k[8..].copy_from_slice(&part.to_be_bytes());
    k
}

fn split_key(key: &[u8]) -> Result<(u64, u32)> {
    match (key.get(..8), key.get(8..)) {
        (Some(s), Some(p)) if p.len() == 4 => {
            let mut seq = [0u8; 8];
            seq.copy_from_slice(s);
            let mut part = [0u8; 4];
            part.copy_from_slice(p);
            Ok((u64::from_be_bytes(seq), u32::from_be_bytes(part)))
        }
        _ => Err(Error::corrupt("change log key of the wrong length")),
    }
}

impl Record {
    /// The record as one byte string (for shipping it to another process or machine; see
    /// [`Record::from_bytes`]).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut names: Vec<&str> = Vec::new();
        let mut index: NameMap<u32> = NameMap::default();
        let mut body = Vec::new();
        for e in &self.entries {
            let next = names.len() as u32;
            let i = *index.entry(e.collection.to_string()).or_insert_with(|| {
                names.push(&e.collection);
                next
            });
            encode_entry(&mut body, i, EntryRef::of(e));
        }
        let mut out = b"OBJCHG".to_vec();
        put_uvarint(&mut out, self.seq);
        encode_header(
            &mut out,
            self.time_micros,
            &self.context,
            self.entries.len() as u64,
            1,
            &names,
        );
        out.extend_from_slice(&body);
        out
    }

    /// A record from [`Record::to_bytes`]; anything else is `InvalidArgument`.
    pub fn from_bytes(bytes: &[u8]) -> Result<Record> {
        let Some(rest) = bytes.strip_prefix(b"OBJCHG") else {
            return Err(Error::invalid(
                "not a change record (it must come from Change.to_bytes())",
            ));
        };
        let mut r = WireReader::new(rest);
        let decoded = (|| {
            let seq = r.uvarint()?;
            let h = decode_header(&mut r)?;
            let mut entries = Vec::with_capacity(h.entries.min(1 << 16) as usize);
            for _ in 0..h.entries {
                entries.push(decode_entry(&mut r, &h.names)?);
            }
            r.finish()?;
            Ok(Record {
                seq,
                time_micros: h.time,
                context: h.context,
                entries,
            })
        })();
        decoded.map_err(|e: Error| match e {
            Error::Corruption(m) => Error::invalid(format!("damaged change record: {m}")),
            other => other,
        })
    }
}

/// The record a write transaction is building, while the database keeps a log.
pub(crate) struct Pending {
    pub(crate) state: LogState,
    pub(crate) context: Context,
    /// The transaction changed the log's settings: its commit appends no record.
    pub(crate) silent: bool,
    names: Vec<String>,
    index: NameMap<u32>,
    body: Vec<u8>,
    /// Where each part after the first starts in `body`.
    cuts: Vec<usize>,
    entries: u64,
}

impl Pending {
    pub(crate) fn new(state: LogState) -> Self {
        Pending {
            state,
            context: Context::default(),
            silent: false,
            names: Vec::new(),
            index: NameMap::default(),
            body: Vec::new(),
            cuts: Vec::new(),
            entries: 0,
        }
    }

    pub(crate) fn images(&self) -> Images {
        self.state.settings.images
    }

    /// Notes a change to the record.
    pub(crate) fn push(&mut self, collection: &str, entry: EntryRef<'_>) {
        let name = match self.index.get(collection) {
            Some(&i) => i,
            None => {
                let i = self.names.len() as u32;
                self.names.push(collection.to_string());
                self.index.insert(collection.to_string(), i);
                i
            }
        };
        let part_start = self.cuts.last().copied().unwrap_or(0);
        if self.body.len() - part_start >= PART_BYTES {
            self.cuts.push(self.body.len());
        }
        encode_entry(&mut self.body, name, entry);
        self.entries += 1;
    }

    /// Notes a document change: `existed` whether a document was there before, `new` the
    /// document written (None: deleted); the record keeps the images its settings say.
    pub(crate) fn data(
        &mut self,
        collection: &str,
        keyed: bool,
        key: &[u8],
        existed: bool,
        old: Option<&[u8]>,
        new: Option<&[u8]>,
    ) {
        let op = match (existed, new.is_some()) {
            (_, false) => OP_DELETE,
            (true, true) => OP_UPDATE,
            (false, true) => OP_INSERT,
        };
        let images = self.images();
        self.push(
            collection,
            EntryRef::Data {
                op,
                keyed,
                key,
                old: old.filter(|_| images.keeps_old()),
                new: new.filter(|_| images.keeps_new()),
            },
        );
    }
}

/// Appends the record of the committing transaction (`pending`) at `now`, applies
/// retention, trims a bounded number of superseded keys and stores the log's state.
pub(crate) fn append<W: PageWrite>(
    w: &mut W,
    catalog_root: u64,
    pending: Pending,
    now: u64,
) -> Result<()> {
    let Pending {
        mut state,
        context,
        silent,
        names,
        body,
        mut cuts,
        entries,
        ..
    } = pending;
    // A commit that changed no document, schema or index (a compaction, say) has nothing
    // to record, and takes no seq: a replica applying the log never needs it.
    if !silent && entries > 0 {
        let seq = state.next_seq;
        let time = context.time_micros.unwrap_or(now);
        if body.is_empty() {
            cuts.clear();
        }
        let mut starts = vec![0usize];
        starts.extend(cuts.iter().copied());
        let parts = if body.is_empty() { 0 } else { starts.len() };
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        let mut header = Vec::with_capacity(64);
        encode_header(&mut header, time, &context, entries, parts as u64, &names);
        btree::put(w, state.root, &part_key(seq, 0), &header)?;
        for i in 0..parts {
            let end = starts.get(i + 1).copied().unwrap_or(body.len());
            let part = u32::try_from(i + 1)
                .map_err(|_| Error::invalid("a transaction too large for the change log"))?;
            btree::put(w, state.root, &part_key(seq, part), &body[starts[i]..end])?;
        }
        state.next_seq += 1;
        if state.oldest == seq {
            state.oldest_time = time;
        }
        retain(w, &mut state, now)?;
        trim(w, &mut state, TRIM_BUDGET + 2 * parts)?;
    }
    store(w, catalog_root, &state)
}

/// Moves `oldest` past what retention no longer keeps (never past the newest record).
fn retain<R: PageRead>(r: &R, state: &mut LogState, now: u64) -> Result<()> {
    let newest = state.next_seq - 1;
    let mut moved = false;
    if let Some(max) = state.settings.retention.max_records {
        let floor = state.next_seq.saturating_sub(max.max(1));
        if floor > state.oldest {
            state.oldest = floor.min(newest);
            moved = true;
        }
    }
    if moved {
        state.oldest_time = record_time(r, state.root, state.oldest)?;
    }
    if let Some(age) = state.settings.retention.max_age_micros {
        let horizon = now.saturating_sub(age);
        let mut steps = 0;
        while state.oldest < newest && state.oldest_time < horizon && steps < AGE_STEPS {
            state.oldest += 1;
            state.oldest_time = record_time(r, state.root, state.oldest)?;
            steps += 1;
        }
    }
    Ok(())
}

fn record_time<R: PageRead>(r: &R, root: u64, seq: u64) -> Result<u64> {
    let head = btree::get(r, root, &part_key(seq, 0))?
        .ok_or_else(|| Error::corrupt(format!("change log: record {seq} is missing")))?;
    Ok(decode_header(&mut WireReader::new(&head))?.time)
}

/// Deletes up to `budget` keys of records below `oldest`.
fn trim<W: PageWrite>(w: &mut W, state: &mut LogState, budget: usize) -> Result<()> {
    if state.trimmed >= state.oldest {
        return Ok(());
    }
    let bound = part_key(state.oldest, 0);
    let mut doomed = Vec::new();
    {
        let mut cursor = Cursor::seek(w, state.root, None)?;
        while doomed.len() < budget {
            let Some((page, i)) = cursor.next(w)? else {
                break;
            };
            let key = btree::node::key(&page, i);
            if key >= &bound[..] {
                break;
            }
            doomed.push(key.to_vec());
        }
    }
    let done = doomed.len() < budget;
    for key in doomed {
        btree::delete(w, state.root, &key)?;
    }
    if done {
        state.trimmed = state.oldest;
    }
    Ok(())
}

/// Records read from a log, and how far the read got.
#[derive(Debug, Default)]
#[non_exhaustive]
pub struct Batch {
    /// The records, in `seq` order (those with no entry in the asked collections skipped).
    pub records: Vec<Record>,
    /// The last `seq` read (whether returned or skipped): the next read starts after it.
    pub through: u64,
    /// True when the read stopped at the end of the log (or at `until`).
    pub done: bool,
}

/// Reads the records after `since` (up to `until`, inclusive) from the log in the catalog
/// at `catalog_root`, stopping at a record boundary once `max_entries` entries were read.
/// `collections` keeps only those collections' entries. Asking for records retention
/// dropped is `Error::ChangesExpired`.
pub(crate) fn read<R: PageRead>(
    r: &R,
    catalog_root: u64,
    since: u64,
    until: Option<u64>,
    max_entries: usize,
    collections: Option<&[String]>,
) -> Result<Batch> {
    let state = load(r, catalog_root)?.ok_or_else(not_enabled)?;
    check_since(&state, since)?;
    let last = until.unwrap_or(u64::MAX).min(state.next_seq - 1);
    let mut batch = Batch {
        records: Vec::new(),
        through: since,
        done: false,
    };
    if since >= last {
        batch.done = true;
        return Ok(batch);
    }
    let mut cursor = Cursor::seek(r, state.root, Some(&part_key(since + 1, 0)))?;
    let mut read = 0usize;
    loop {
        if read >= max_entries.max(1) && !batch.records.is_empty() {
            return Ok(batch);
        }
        let Some((page, i)) = cursor.next(r)? else {
            break;
        };
        let (seq, part) = split_key(btree::node::key(&page, i))?;
        if seq > last {
            break;
        }
        if part != 0 {
            return Err(Error::corrupt(format!(
                "change log: record {seq} has no header"
            )));
        }
        let head = TreeValue::from_leaf(r, &page, i)?;
        let h = decode_header(&mut WireReader::new(&head))?;
        let mut entries = Vec::with_capacity(h.entries.min(1 << 16) as usize);
        for want in 1..=h.parts {
            let Some((page, i)) = cursor.next(r)? else {
                return Err(Error::corrupt(format!(
                    "change log: record {seq} lacks part {want}"
                )));
            };
            if split_key(btree::node::key(&page, i))? != (seq, want as u32) {
                return Err(Error::corrupt(format!(
                    "change log: record {seq} lacks part {want}"
                )));
            }
            let part = TreeValue::from_leaf(r, &page, i)?;
            let mut rd = WireReader::new(&part);
            while !rd.is_empty() {
                let e = decode_entry(&mut rd, &h.names)?;
                if collections.is_none_or(|c| c.iter().any(|n| **n == *e.collection)) {
                    entries.push(e);
                }
            }
        }
        read += h.entries as usize;
        batch.through = seq;
        if collections.is_none() || !entries.is_empty() {
            batch.records.push(Record {
                seq,
                time_micros: h.time,
                context: h.context,
                entries,
            });
        }
    }
    batch.through = last;
    batch.done = true;
    Ok(batch)
}

/// The change log's reads, for every kind of snapshot.
pub trait ChangeReads: Reader {
    /// The log's settings and counters as this snapshot sees them (None: no log).
    fn change_log(&self) -> Result<Option<LogInfo>> {
        self.check_usable()?;
        Ok(load(self, self.catalog_root())?.map(|s| s.info()))
    }

    /// The records after `since` up to `until` (see [`Batch`]), at most about
    /// `max_entries` entries at a time.
    fn changes(
        &self,
        since: u64,
        until: Option<u64>,
        max_entries: usize,
        collections: Option<&[String]>,
    ) -> Result<Batch> {
        self.check_usable()?;
        read(
            self,
            self.catalog_root(),
            since,
            until,
            max_entries,
            collections,
        )
    }
}

impl<R: Reader> ChangeReads for R {}

/// Refuses a `since` older than what the log keeps.
pub(crate) fn check_since(state: &LogState, since: u64) -> Result<()> {
    if since.saturating_add(1) < state.oldest {
        return Err(Error::ChangesExpired {
            oldest: state.oldest,
            message: format!(
                "records after seq {since} were asked for, but retention kept only seq {} \
                 onwards; resync from a backup or a full export, then follow from there",
                state.oldest
            ),
        });
    }
    Ok(())
}

pub(crate) fn not_enabled() -> Error {
    Error::invalid(
        "this database keeps no change log: open it with obj.Db(path, changes=True) or call \
         db.enable_changes() first",
    )
}

/// The tree and overflow pages the log uses, for compaction and integrity checking.
pub(crate) fn root<R: PageRead>(r: &R, catalog_root: u64) -> Result<Option<u64>> {
    Ok(load(r, catalog_root)?.map(|s| s.root))
}

/// Where a replica stands: the last `seq` of another database's log it applied.
pub(crate) fn applied<R: PageRead>(r: &R, catalog_root: u64) -> Result<u64> {
    match btree::get(r, catalog_root, catalog::APPLIED_KEY)? {
        Some(v) => {
            let mut rd = WireReader::new(&v);
            let seq = rd.uvarint()?;
            rd.finish()?;
            Ok(seq)
        }
        None => Ok(0),
    }
}

pub(crate) fn set_applied<W: PageWrite>(w: &mut W, catalog_root: u64, seq: u64) -> Result<()> {
    let mut v = Vec::new();
    put_uvarint(&mut v, seq);
    btree::put(w, catalog_root, catalog::APPLIED_KEY, &v)?;
    Ok(())
}
