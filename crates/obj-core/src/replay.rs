//! Replaying change records: turning on and configuring a database's change log, applying
//! another database's records to this one (a replica, or a backup brought forward), and
//! reverting one transaction. Above the write transaction: everything here is writes
//! through [`WriteTxn`]'s ordinary methods, recorded (when this database keeps a log too)
//! like any other.

use crate::catalog::CollectionKind;
use crate::changelog::{self, Context, Entry, LogSettings, LogState, Op, Pending, Record};
use crate::error::{Error, Result};
use crate::format;
use crate::reader::{Reader, Source};
use crate::write::WriteTxn;

impl WriteTxn {
    /// Turns the change log on with `settings`, changes its settings, or (None) turns it
    /// off and drops every record. This transaction's own commit appends no record: the
    /// log starts with the next commit. Returns whether anything changed.
    pub fn set_changes(&mut self, settings: Option<LogSettings>) -> Result<bool> {
        self.check_usable()?;
        let catalog_root = self.meta.catalog_root;
        let current = changelog::load(self, catalog_root)?;
        match (settings, current) {
            (None, None) => Ok(false),
            (None, Some(state)) => {
                changelog::remove(self, catalog_root, &state)?;
                self.meta.required_features &= !format::FEATURE_CHANGES;
                self.log = None;
                Ok(true)
            }
            (Some(settings), current) => {
                settings.check()?;
                let mut state = match current {
                    Some(state) if state.settings == settings => return Ok(false),
                    Some(state) => state,
                    None => {
                        let root = crate::btree::create(self)?;
                        // A replica that applied records keeps their numbering.
                        let next = changelog::applied(self, catalog_root)? + 1;
                        LogState::new(settings, root, next)
                    }
                };
                state.settings = settings;
                changelog::store(self, catalog_root, &state)?;
                self.meta.required_features |= format::FEATURE_CHANGES;
                let mut pending = Pending::new(state);
                pending.silent = true;
                self.log = Some(pending);
                Ok(true)
            }
        }
    }

    /// The last `seq` of another database's log this one has applied (0: none): its own
    /// log's last record when it keeps one (a backup of a database with a log starts where
    /// the original was), else the position [`WriteTxn::apply_record`] stores.
    pub fn applied_seq(&self) -> Result<u64> {
        match &self.log {
            Some(log) => Ok(log.state.next_seq - 1),
            None => changelog::applied(self, self.meta.catalog_root),
        }
    }

    /// Applies `record` (another database's) as this transaction: false (nothing done) if
    /// this database already applied it, `InvalidArgument` if records before it are
    /// missing. Keep one record per transaction, so each keeps its `seq`; a database
    /// that keeps a log records it under the same `seq`, time and metadata.
    pub fn apply_record(&mut self, record: &Record) -> Result<bool> {
        self.check_usable()?;
        let at = self.applied_seq()?;
        if record.seq <= at {
            return Ok(false);
        }
        if record.seq != at + 1 {
            return Err(Error::invalid(format!(
                "change record {} does not follow this database's position {at}: records {} \
                 to {} are missing (apply them first, or start from a backup taken later)",
                record.seq,
                at + 1,
                record.seq - 1
            )));
        }
        if let Some(log) = &mut self.log {
            if log.silent {
                return Err(Error::invalid(
                    "apply change records in a transaction of their own, not in the one that \
                     changed the change log's settings",
                ));
            }
            log.context = Context {
                time_micros: Some(record.time_micros),
                ..record.context.clone()
            };
        }
        for e in &record.entries {
            self.apply_entry(record.seq, e)?;
        }
        if self.log.is_none() {
            let root = self.meta.catalog_root;
            changelog::set_applied(self, root, record.seq)?;
        }
        Ok(true)
    }

    fn apply_entry(&mut self, seq: u64, e: &Entry) -> Result<()> {
        let c = &*e.collection;
        match &e.op {
            Op::Insert | Op::Update => {
                let value = e.new_value()?.ok_or_else(|| {
                    Error::invalid(format!(
                        "change record {seq} keeps no new images (the log was opened with \
                         changes=\"keys\" or \"old\"); replaying needs changes=\"new\" or \"both\""
                    ))
                })?;
                self.write_entry(e, &value)
            }
            Op::Delete => {
                match (e.keyed, e.id()) {
                    (true, _) => self.delete_key(c, &e.key)?,
                    (false, Some(id)) => self.delete(c, id)?,
                    (false, None) => return Err(bad_id(seq)),
                };
                Ok(())
            }
            Op::Schema(schema) => self.register_schema(c, schema).map(drop),
            Op::DropSchema(version) => self.drop_schema(c, *version).map(drop),
            Op::Index(spec) => self.ensure_index(c, spec).map(drop),
            Op::Create(kind) => self.create_collection(c, *kind).map(drop),
        }
    }

    /// Stores `value` (kind, schema version, expiry and payload as the entry's image says)
    /// where entry `e` names.
    fn write_entry(&mut self, e: &Entry, value: &crate::reader::Value) -> Result<()> {
        let h = value.header();
        let c = &*e.collection;
        if e.keyed {
            self.put_key_doc_until(c, &e.key, h.kind, h.type_version, value, h.expires_at)?;
        } else {
            let id = e.id().ok_or_else(|| bad_id(0))?;
            self.put_doc(c, id, h.kind, h.type_version, value)?;
        }
        Ok(())
    }

    /// Undoes the document changes of record `seq` of this database's log, as this
    /// transaction: each document goes back to its old image (or away, if the record
    /// inserted it). Refused with `ConditionFailed`, changing nothing, when a later commit
    /// changed one of those documents; needs a log that keeps both images.
    pub fn revert(&mut self, seq: u64) -> Result<Record> {
        self.check_usable()?;
        let log = self.log.as_ref().ok_or_else(changelog::not_enabled)?;
        if log.images() != changelog::Images::Both {
            return Err(Error::invalid(format!(
                "revert needs a log that keeps both images; this one keeps {:?} (turn it to \
                 changes=\"both\" for commits you may want to revert)",
                log.images().name()
            )));
        }
        let catalog_root = self.meta.catalog_root;
        let batch = changelog::read(
            self,
            catalog_root,
            seq.saturating_sub(1),
            Some(seq),
            1,
            None,
        )?;
        let record = batch
            .records
            .into_iter()
            .find(|r| r.seq == seq)
            .ok_or_else(|| {
                Error::NotFound(format!("change record {seq} (the log ends before it)"))
            })?;
        // Check every document first, so a refusal changes nothing.
        let data: Vec<&Entry> = record.entries.iter().filter(|e| e.op.is_data()).collect();
        for e in &data {
            let now = self.current(e)?;
            let want = e.new_value()?;
            let same = match (&now, &want) {
                (None, None) => true,
                (Some(a), Some(b)) => {
                    let (ha, hb) = (a.header(), b.header());
                    (ha.kind, ha.type_version, ha.expires_at)
                        == (hb.kind, hb.type_version, hb.expires_at)
                        && **a == **b
                }
                _ => false,
            };
            if !same {
                return Err(Error::ConditionFailed(format!(
                    "{} of {:?} changed after change record {seq}; revert the later records \
                     first (newest first)",
                    describe(e),
                    &*e.collection
                )));
            }
        }
        for e in data.iter().rev() {
            match e.old_value()? {
                Some(old) => self.write_entry(e, &old)?,
                None if e.keyed => {
                    self.delete_key(&e.collection, &e.key)?;
                }
                None => {
                    let id = e.id().ok_or_else(|| bad_id(seq))?;
                    self.delete(&e.collection, id)?;
                }
            }
        }
        Ok(record)
    }

    /// The document entry `e` names, as this transaction sees it now.
    fn current(&self, e: &Entry) -> Result<Option<crate::reader::Value>> {
        let kind = self.collection_root(&e.collection)?.map(|r| r.kind);
        match (kind, e.keyed) {
            (None, _) => Ok(None),
            (Some(CollectionKind::Keyed), true) => self.get_key(&e.collection, &e.key),
            (Some(_), false) => match e.id() {
                Some(id) => self.get(&e.collection, id),
                None => Err(bad_id(0)),
            },
            (Some(_), _) => Ok(None),
        }
    }
}

fn describe(e: &Entry) -> String {
    match e.id() {
        Some(id) => format!("document {id}"),
        None => format!(
            "the document under key {:?}",
            String::from_utf8_lossy(&e.key)
        ),
    }
}

fn bad_id(seq: u64) -> Error {
    Error::corrupt(format!("change record {seq}: an id that is not 8 bytes"))
}
