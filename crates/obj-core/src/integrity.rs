//! `integrity_check`: walks every tree, overflow chain and the freelist of one snapshot and
//! checks checksums, structure, key order, counts and that every page is used exactly once.

use crate::btree::node::{self, LeafValue};
use crate::btree::{overflow, PageRead, MAX_DEPTH};
use crate::catalog::{self, CollectionKind, CollectionRecord};
use crate::doc::DocHeader;
use crate::error::{Error, Result};
use crate::format::PageKind;
use crate::freelist;
use crate::index::{entry_key, keys_for};
use crate::reader::ReadTxn;
use crate::reader::Reader;
use std::collections::{HashMap, HashSet};

/// What a successful check found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct IntegrityReport {
    /// Pages in the file.
    pub page_count: u64,
    /// Pages on the freelist.
    pub free_pages: u64,
    /// One report per collection.
    pub collections: Vec<CollectionReport>,
    /// Pages of the change log's tree (0 without a log).
    pub change_log_pages: u64,
}

/// What the check found in one collection.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CollectionReport {
    /// The collection name.
    pub name: String,
    /// Documents walked.
    pub documents: u64,
    /// Pages owned by the collection's tree and its overflow chains.
    pub pages: u64,
}

/// Called with each leaf entry's key and value.
type LeafVisitor<'f, 'a> = dyn FnMut(&mut Walk<'a>, &[u8], &[u8]) + 'f;
/// A node still to visit: page, depth, and the key bounds its parent gives it.
type PendingNode = (u64, usize, Option<Vec<u8>>, Option<Vec<u8>>);

struct Walk<'a> {
    snap: &'a ReadTxn,
    /// Owner tag per page: 0 unseen.
    /// Owner tag of every claimed page (sparse: a damaged header may claim any page count).
    owner: HashMap<u64, u32>,
    page_count: u64,
    problems: Vec<String>,
    /// The first failure that is not damage (an I/O error, a closed handle): returned as
    /// it is, since the file may be fine.
    fatal: Option<Error>,
}

const MAX_PROBLEMS: usize = 100;

impl<'a> Walk<'a> {
    /// Records a read failure: damage becomes a problem, anything else is kept to return.
    fn failed(&mut self, context: &str, e: Error) {
        match e {
            Error::Io(_) | Error::Closed(_) => {
                if self.fatal.is_none() {
                    self.fatal = Some(e);
                }
            }
            e => self.problem(format!("{context}: {e}")),
        }
    }

    fn problem(&mut self, msg: String) {
        if self.problems.len() < MAX_PROBLEMS {
            self.problems.push(msg);
        }
    }

    fn claim(&mut self, no: u64, tag: u32, what: &str) -> bool {
        if no == 0 || no >= self.page_count {
            self.problem(format!("{what}: page {no} is beyond the database size"));
            return false;
        }
        if self.owner.insert(no, tag).is_some() {
            self.problem(format!("{what}: page {no} is used twice"));
            return false;
        }
        true
    }

    /// Walks a tree; calls `leaf` for each entry. Returns (entries, pages).
    fn tree(
        &mut self,
        root: u64,
        tag: u32,
        what: &str,
        leaf: &mut LeafVisitor<'_, 'a>,
    ) -> (u64, u64) {
        let mut entries = 0u64;
        let mut pages = 0u64;
        let mut leaf_depth: Option<usize> = None;
        // (page, depth, low bound, high bound)
        let mut stack: Vec<PendingNode> = vec![(root, 0, None, None)];
        while let Some((no, depth, lo, hi)) = stack.pop() {
            if depth > MAX_DEPTH {
                self.problem(format!("{what}: tree deeper than {MAX_DEPTH}"));
                continue;
            }
            if !self.claim(no, tag, what) {
                continue;
            }
            pages += 1;
            let page = match self.snap.page(no) {
                Ok(p) => p,
                Err(e) => {
                    self.failed(what, e);
                    continue;
                }
            };
            let is_leaf = match PageKind::of(page[0]) {
                Some(PageKind::Leaf) => true,
                Some(PageKind::Branch) => false,
                _ => {
                    self.problem(format!("{what}: page {no} is not a B-tree node"));
                    continue;
                }
            };
            let n = node::count(&page);
            for i in 0..n {
                let k = node::key(&page, i);
                if i > 0 && node::key(&page, i - 1) >= k {
                    self.problem(format!("{what}: keys out of order in page {no}"));
                }
                if lo.as_deref().is_some_and(|lo| k < lo) || hi.as_deref().is_some_and(|hi| k >= hi)
                {
                    self.problem(format!(
                        "{what}: key outside its parent's range in page {no}"
                    ));
                }
            }
            if is_leaf {
                if *leaf_depth.get_or_insert(depth) != depth {
                    self.problem(format!("{what}: leaves at different depths (page {no})"));
                }
                for i in 0..n {
                    entries += 1;
                    let value = match node::leaf_value(&page, i) {
                        LeafValue::Inline(v) => v.to_vec(),
                        LeafValue::Overflow { first, len } => {
                            match overflow::chain(self.snap, first, len) {
                                Ok(chain) => {
                                    for p in chain {
                                        if self.claim(p, tag, what) {
                                            pages += 1;
                                        }
                                    }
                                }
                                Err(e) => self.failed(what, e),
                            }
                            match overflow::read(self.snap, first, len) {
                                Ok(v) => v,
                                Err(_) => continue,
                            }
                        }
                    };
                    leaf(self, node::key(&page, i), &value);
                }
            } else {
                for i in 0..=n {
                    let child_lo = if i == 0 {
                        lo.clone()
                    } else {
                        Some(node::key(&page, i - 1).to_vec())
                    };
                    let child_hi = if i == n {
                        hi.clone()
                    } else {
                        Some(node::key(&page, i).to_vec())
                    };
                    stack.push((node::child(&page, i), depth + 1, child_lo, child_hi));
                }
            }
        }
        (entries, pages)
    }
}

/// Owner tag of a collection's tree (part 0) or of its index trees (part 1..).
fn tag(collection: usize, part: usize) -> u32 {
    2 + (collection as u32) * 1024 + part as u32
}

pub fn check(snap: &ReadTxn) -> Result<IntegrityReport> {
    let meta = snap.meta().clone();
    let mut walk = Walk {
        snap,
        owner: HashMap::new(),
        page_count: meta.page_count,
        problems: Vec::new(),
        fatal: None,
    };
    let mut records: Vec<(String, CollectionRecord)> = Vec::new();
    walk.tree(meta.catalog_root, 1, "catalog", &mut |_, _, _| {});
    match catalog::list(snap, meta.catalog_root) {
        Ok(list) => records = list,
        Err(e) => walk.failed("catalog", e),
    }
    let mut report = IntegrityReport {
        page_count: meta.page_count,
        ..Default::default()
    };
    for (i, (name, rec)) in records.iter().enumerate() {
        let what = format!("collection {name:?}");
        let mut max_id = 0u64;
        let keyed = rec.kind == CollectionKind::Keyed;
        let mut bad_keys = 0u64;
        let mut bad_headers = 0u64;
        let mut undecodable = 0u64;
        let defs = match snap.indexes(name) {
            Ok(defs) => defs,
            Err(e) => {
                walk.failed(&format!("{what}: index definitions"), e);
                Default::default()
            }
        };
        // The entries every index should hold, recomputed from the documents.
        let mut expected: Vec<HashSet<Vec<u8>>> = vec![HashSet::new(); defs.len()];
        let (entries, pages) = walk.tree(rec.root, tag(i, 0), &what, &mut |_, key, value| {
            if keyed {
                if catalog::check_key(key).is_err() {
                    bad_keys += 1;
                    return;
                }
            } else {
                match <[u8; 8]>::try_from(key) {
                    Ok(k) if u64::from_be_bytes(k) != 0 => {
                        max_id = max_id.max(u64::from_be_bytes(k));
                    }
                    _ => {
                        bad_keys += 1;
                        return;
                    }
                }
            }
            let (h, len) = match DocHeader::decode(value) {
                Ok((h, len)) if h.collection_id == rec.id => (h, len),
                _ => {
                    bad_headers += 1;
                    return;
                }
            };
            if defs.is_empty() {
                return;
            }
            let payload = match crate::doc::expand(&h, &value[len..]) {
                Ok(p) => p,
                Err(_) => {
                    undecodable += 1;
                    return;
                }
            };
            match snap.decode_payload(name, h.kind, h.type_version, &payload) {
                Ok(Some(doc)) => {
                    for (def, want) in defs.iter().zip(expected.iter_mut()) {
                        match keys_for(&def.spec, &doc, h.expires_at) {
                            Ok(keys) => {
                                want.extend(keys.iter().map(|k| entry_key(def.spec.kind, k, key)))
                            }
                            Err(_) => undecodable += 1,
                        }
                    }
                }
                Ok(None) => {}
                Err(_) => undecodable += 1,
            }
        });
        if undecodable > 0 {
            walk.problem(format!(
                "{what}: {undecodable} documents do not decode with their schema"
            ));
        }
        for (j, (def, want)) in defs.iter().zip(expected).enumerate() {
            let iwhat = format!("index {:?} of {what}", def.spec.name);
            let mut found: HashSet<Vec<u8>> = HashSet::new();
            walk.tree(def.root, tag(i, j + 1), &iwhat, &mut |_, key, _| {
                found.insert(key.to_vec());
            });
            let missing = want.difference(&found).count();
            let extra = found.difference(&want).count();
            if missing + extra > 0 {
                walk.problem(format!(
                    "{iwhat}: disagrees with the documents ({missing} entries missing, {extra} unexpected)"
                ));
            }
        }
        if bad_headers > 0 {
            walk.problem(format!(
                "{what}: {bad_headers} documents have a damaged or foreign header"
            ));
        }
        if bad_keys > 0 {
            walk.problem(format!(
                "{what}: {bad_keys} keys are not valid {}",
                if keyed {
                    "keys (1 to 1024 bytes)"
                } else {
                    "document ids (8 bytes, not 0)"
                }
            ));
        }
        if entries != rec.count {
            walk.problem(format!(
                "{what}: holds {entries} documents but the catalog says {}",
                rec.count
            ));
        }
        if !keyed && rec.next_id != 0 && max_id >= rec.next_id {
            walk.problem(format!(
                "{what}: id {max_id} is not below the next id {}",
                rec.next_id
            ));
        }
        report.collections.push(CollectionReport {
            name: name.clone(),
            documents: entries,
            pages,
        });
    }
    // The change log: every record's header and parts decode, in key order.
    match crate::changelog::load(snap, meta.catalog_root) {
        Ok(Some(state)) => {
            let mut bad = 0u64;
            let (_, pages) = walk.tree(state.root, u32::MAX - 2, "change log", &mut |_, key, _| {
                if key.len() != 12 {
                    bad += 1;
                }
            });
            if bad > 0 {
                walk.problem(format!("change log: {bad} keys of the wrong length"));
            }
            // In batches, so a long log is never in memory at once.
            let mut since = state.oldest.saturating_sub(1);
            loop {
                match crate::changelog::read(snap, meta.catalog_root, since, None, 4096, None) {
                    Ok(batch) if batch.done => break,
                    Ok(batch) => since = batch.through,
                    Err(e) => {
                        walk.problem(format!("change log: {e}"));
                        break;
                    }
                }
            }
            report.change_log_pages = pages;
        }
        Ok(None) => {}
        Err(e) => walk.failed("change log", e),
    }
    // Freelist.
    let mut free = 0u64;
    let mut trunk = meta.free_head;
    let mut hops = 0u64;
    while trunk != 0 {
        hops += 1;
        if hops > meta.page_count {
            walk.problem("freelist: trunk chain loops".into());
            break;
        }
        if !walk.claim(trunk, u32::MAX - 1, "freelist") {
            break;
        }
        free += 1;
        let page = match snap.page(trunk) {
            Ok(p) if p[0] == PageKind::FreeTrunk as u8 => p,
            Ok(_) => {
                walk.problem(format!("freelist: page {trunk} is not a trunk"));
                break;
            }
            Err(e) => {
                walk.failed("freelist", e);
                break;
            }
        };
        for i in 0..freelist::count(&page) {
            let no = freelist::entry(&page, i);
            if walk.claim(no, u32::MAX - 1, "freelist") {
                free += 1;
            }
        }
        trunk = freelist::next(&page);
    }
    if free != meta.free_count {
        walk.problem(format!(
            "freelist holds {free} pages but the header says {}",
            meta.free_count
        ));
    }
    let unowned = (meta.page_count - 1).saturating_sub(walk.owner.len() as u64);
    if unowned > 0 {
        let shown: Vec<String> = (1..meta.page_count)
            .filter(|p| !walk.owner.contains_key(p))
            .take(10)
            .map(|p| p.to_string())
            .collect();
        walk.problem(format!(
            "{unowned} page(s) belong to nothing: {}",
            shown.join(", ")
        ));
    }
    report.free_pages = free;
    if let Some(e) = walk.fatal {
        return Err(e);
    }
    if walk.problems.is_empty() {
        Ok(report)
    } else {
        Err(Error::Integrity(walk.problems))
    }
}
