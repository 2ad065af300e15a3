//! B+trees over pages: point lookup, upsert, delete with merging, ordered cursors.
//!
//! A tree is named by its root page, which never moves: a root split moves the root's
//! content into two new children, and a root left with one child absorbs it.

mod cursor;
pub mod node;
pub mod overflow;

pub use cursor::Cursor;

use crate::error::{Error, Result};
use crate::format::PageKind;
use crate::pager::PageBuf;
use node::LeafValue;

/// Deeper than any real tree (every node holds at least two keys); guards against cycles.
pub const MAX_DEPTH: usize = 48;

/// Read access to the pages of one snapshot.
pub trait PageRead {
    /// Page `no` as this reader sees it (verified when it was loaded).
    fn page(&self, no: u64) -> Result<PageBuf>;
    /// The logical page size in bytes.
    fn page_size(&self) -> usize;
}

/// Write access inside a write transaction.
pub trait PageWrite: PageRead {
    /// The page, copied into the transaction on first change.
    fn page_mut(&mut self, no: u64) -> Result<&mut [u8]>;
    /// A zeroed buffer for a freshly allocated page.
    fn page_new(&mut self, no: u64) -> Result<&mut [u8]>;
    fn alloc_page(&mut self) -> Result<u64>;
    fn free_page(&mut self, no: u64) -> Result<()>;
}

/// A value read from a tree: borrowed from a shared page when it is inline, owned when it
/// was assembled from an overflow chain.
#[derive(Clone)]
pub struct TreeValue(ValueRepr);

#[derive(Clone)]
enum ValueRepr {
    Page(PageBuf, std::ops::Range<usize>),
    Owned(Vec<u8>, usize),
}

impl TreeValue {
    pub fn into_vec(self) -> Vec<u8> {
        match self.0 {
            ValueRepr::Page(page, range) => page[range].to_vec(),
            ValueRepr::Owned(mut v, start) => {
                v.drain(..start);
                v
            }
        }
    }

    /// A value built in memory (a decompressed payload).
    pub fn owned(bytes: Vec<u8>) -> TreeValue {
        TreeValue(ValueRepr::Owned(bytes, 0))
    }

    /// The same value without its first `n` bytes (`n` must not exceed the length).
    pub fn skip(self, n: usize) -> TreeValue {
        debug_assert!(n <= self.len());
        TreeValue(match self.0 {
            ValueRepr::Page(page, range) => ValueRepr::Page(page, range.start + n..range.end),
            ValueRepr::Owned(v, start) => ValueRepr::Owned(v, start + n),
        })
    }

    pub(crate) fn from_leaf<R: PageRead>(r: &R, page: &PageBuf, i: usize) -> Result<TreeValue> {
        if let Some(range) = node::inline_range(page, i) {
            return Ok(TreeValue(ValueRepr::Page(page.clone(), range)));
        }
        match node::leaf_value(page, i) {
            LeafValue::Overflow { first, len } => Ok(TreeValue(ValueRepr::Owned(
                overflow::read(r, first, len)?,
                0,
            ))),
            LeafValue::Inline(v) => Ok(TreeValue(ValueRepr::Owned(v.to_vec(), 0))),
        }
    }
}

impl std::ops::Deref for TreeValue {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match &self.0 {
            ValueRepr::Page(page, range) => &page[range.clone()],
            ValueRepr::Owned(v, start) => &v[*start..],
        }
    }
}

/// Loads a node page, checking that it is a node.
pub(crate) fn node_page<R: PageRead>(r: &R, no: u64) -> Result<PageBuf> {
    let page = r.page(no)?;
    match PageKind::of(node::kind(&page)) {
        Some(PageKind::Branch) | Some(PageKind::Leaf) => Ok(page),
        _ => Err(Error::corrupt_page(no, "expected a B-tree node")),
    }
}

/// Creates an empty tree and returns its root page.
pub fn create<W: PageWrite>(w: &mut W) -> Result<u64> {
    let root = w.alloc_page()?;
    node::init(w.page_new(root)?, PageKind::Leaf);
    Ok(root)
}

/// Looks up `key`.
pub fn get<R: PageRead>(r: &R, root: u64, key: &[u8]) -> Result<Option<TreeValue>> {
    let mut no = root;
    for _ in 0..MAX_DEPTH {
        let page = node_page(r, no)?;
        if node::is_leaf(&page) {
            return match node::search(&page, key) {
                Ok(i) => Ok(Some(TreeValue::from_leaf(r, &page, i)?)),
                Err(_) => Ok(None),
            };
        }
        no = node::child(&page, node::child_index(&page, key));
    }
    Err(Error::corrupt_page(
        root,
        "tree deeper than the depth limit",
    ))
}

/// One step of a root-to-leaf path: the node, the child taken, whether it was the last.
#[derive(Clone, Copy)]
struct Step {
    page: u64,
    idx: usize,
    rightmost: bool,
}

fn descend<R: PageRead>(r: &R, root: u64, key: &[u8]) -> Result<Vec<Step>> {
    let mut path = Vec::with_capacity(8);
    let mut no = root;
    for _ in 0..MAX_DEPTH {
        let page = node_page(r, no)?;
        if node::is_leaf(&page) {
            path.push(Step {
                page: no,
                idx: 0,
                rightmost: true,
            });
            return Ok(path);
        }
        let idx = node::child_index(&page, key);
        path.push(Step {
            page: no,
            idx,
            rightmost: idx == node::count(&page),
        });
        no = node::child(&page, idx);
    }
    Err(Error::corrupt_page(
        root,
        "tree deeper than the depth limit",
    ))
}

/// Inserts or replaces `key`; returns true if it replaced a value.
pub fn put<W: PageWrite>(w: &mut W, root: u64, key: &[u8], value: &[u8]) -> Result<bool> {
    let page_size = w.page_size();
    if key.len() > node::max_key(page_size) {
        return Err(Error::invalid(format!(
            "key of {} bytes exceeds the limit of {} bytes",
            key.len(),
            node::max_key(page_size)
        )));
    }
    let vlen = u32::try_from(value.len()).map_err(|_| {
        Error::invalid(format!(
            "value of {} bytes exceeds the 4 GiB limit",
            value.len()
        ))
    })?;
    let path = descend(w, root, key)?;
    let leaf = path[path.len() - 1].page;
    let page = w.page(leaf)?;
    let (pos, replaced) = match node::search(&page, key) {
        Ok(i) => {
            if let LeafValue::Overflow { first, len } = node::leaf_value(&page, i) {
                overflow::free(w, first, len)?;
            }
            node::remove_cell(w.page_mut(leaf)?, i);
            (i, true)
        }
        Err(i) => (i, false),
    };
    drop(page);
    let cell = if node::LEAF_CELL_HDR + key.len() + value.len() <= node::max_cell(page_size) {
        node::leaf_cell(key, value)
    } else {
        let first = overflow::write(w, value)?;
        node::leaf_overflow_cell(key, vlen, first)
    };
    insert_at(w, &path, path.len() - 1, pos, cell)?;
    Ok(replaced)
}

/// Inserts `cell` at `pos` in the node at `path[level]`, splitting upward as needed.
fn insert_at<W: PageWrite>(
    w: &mut W,
    path: &[Step],
    level: usize,
    pos: usize,
    cell: Vec<u8>,
) -> Result<()> {
    let no = path[level].page;
    if node::insert_cell(w.page_mut(no)?, pos, &cell) {
        return Ok(());
    }
    let page = w.page(no)?;
    let leaf = node::is_leaf(&page);
    let kind = if leaf {
        PageKind::Leaf
    } else {
        PageKind::Branch
    };
    let right_child = node::right_child(&page);
    let mut cells = node::cells(&page);
    drop(page);
    cells.insert(pos, cell);
    // Appending at the far right end (ascending ids): keep the left node full.
    let append = pos + 1 == cells.len() && path[..level].iter().all(|s| s.rightmost);
    let (left, sep, left_rc, right, right_rc) = if leaf {
        let at = if append {
            cells.len() - 1
        } else {
            balanced_split(&cells, 1)
        };
        let right = cells.split_off(at);
        let sep = node::cell_key(&right[0], true).to_vec();
        (cells, sep, 0, right, 0)
    } else {
        let mid = if append {
            cells.len() - 1
        } else {
            balanced_split(&cells, 0)
        };
        let mut right = cells.split_off(mid);
        let middle = right.remove(0);
        let sep = node::cell_key(&middle, false).to_vec();
        let left_rc = node::cell_child(&middle);
        (cells, sep, left_rc, right, right_child)
    };
    let right_no = w.alloc_page()?;
    node::rebuild(w.page_new(right_no)?, kind, &right, right_rc);
    if level == 0 {
        let left_no = w.alloc_page()?;
        node::rebuild(w.page_new(left_no)?, kind, &left, left_rc);
        let root = w.page_mut(no)?;
        node::rebuild(
            root,
            PageKind::Branch,
            &[node::branch_cell(&sep, left_no)],
            right_no,
        );
        return Ok(());
    }
    node::rebuild(w.page_mut(no)?, kind, &left, left_rc);
    let parent = path[level - 1];
    node::set_child(w.page_mut(parent.page)?, parent.idx, right_no);
    insert_at(w, path, level - 1, parent.idx, node::branch_cell(&sep, no))
}

/// Split point by bytes; both halves keep at least `min_left` cells on the left and one on
/// the right.
fn balanced_split(cells: &[Vec<u8>], min_left: usize) -> usize {
    let total: usize = cells.iter().map(|c| c.len() + 2).sum();
    let mut acc = 0;
    for (i, c) in cells.iter().enumerate() {
        acc += c.len() + 2;
        if acc * 2 >= total {
            return (i + 1).clamp(min_left.max(1), cells.len() - 1);
        }
    }
    cells.len() - 1
}

/// Deletes `key`; returns whether it was present.
pub fn delete<W: PageWrite>(w: &mut W, root: u64, key: &[u8]) -> Result<bool> {
    let path = descend(w, root, key)?;
    let leaf = path[path.len() - 1].page;
    let page = w.page(leaf)?;
    let Ok(i) = node::search(&page, key) else {
        return Ok(false);
    };
    if let LeafValue::Overflow { first, len } = node::leaf_value(&page, i) {
        overflow::free(w, first, len)?;
    }
    drop(page);
    node::remove_cell(w.page_mut(leaf)?, i);
    rebalance(w, &path, path.len() - 1)?;
    Ok(true)
}

/// Merges an underfull node at `path[level]` with a sibling when both fit in one page.
fn rebalance<W: PageWrite>(w: &mut W, path: &[Step], level: usize) -> Result<()> {
    let no = path[level].page;
    if level == 0 {
        return collapse_root(w, no);
    }
    let capacity = node::capacity(w.page_size());
    if node::used(&w.page(no)?) >= capacity / 4 {
        return Ok(());
    }
    let parent = path[level - 1];
    let ppage = w.page(parent.page)?;
    if node::count(&ppage) == 0 {
        return rebalance(w, path, level - 1);
    }
    let li = if parent.idx > 0 { parent.idx - 1 } else { 0 };
    let (left, right) = (node::child(&ppage, li), node::child(&ppage, li + 1));
    let sep = node::key(&ppage, li).to_vec();
    drop(ppage);
    let (lp, rp) = (node_page(w, left)?, node_page(w, right)?);
    let leaf = node::is_leaf(&lp);
    if leaf != node::is_leaf(&rp) {
        return Err(Error::corrupt_page(
            parent.page,
            "children of different kinds",
        ));
    }
    let extra = if leaf {
        0
    } else {
        node::BRANCH_CELL_HDR + sep.len() + 2
    };
    if node::used(&lp) + node::used(&rp) + extra > capacity {
        return Ok(());
    }
    let mut cells = node::cells(&lp);
    let (kind, rc) = if leaf {
        (PageKind::Leaf, 0)
    } else {
        cells.push(node::branch_cell(&sep, node::right_child(&lp)));
        (PageKind::Branch, node::right_child(&rp))
    };
    cells.extend(node::cells(&rp));
    drop((lp, rp));
    node::rebuild(w.page_mut(left)?, kind, &cells, rc);
    let pm = w.page_mut(parent.page)?;
    node::remove_cell(pm, li);
    node::set_child(pm, li, left);
    w.free_page(right)?;
    rebalance(w, path, level - 1)
}

/// A root branch left with a single child takes over that child's content.
fn collapse_root<W: PageWrite>(w: &mut W, root: u64) -> Result<()> {
    for _ in 0..MAX_DEPTH {
        let page = w.page(root)?;
        if node::is_leaf(&page) || node::count(&page) > 0 {
            return Ok(());
        }
        let child = node::right_child(&page);
        drop(page);
        let content = node_page(w, child)?;
        w.page_mut(root)?.copy_from_slice(&content);
        w.free_page(child)?;
    }
    Err(Error::corrupt_page(
        root,
        "tree deeper than the depth limit",
    ))
}

/// The pages of one tree.
pub struct TreeLayout {
    /// Node pages, depth-first from the root.
    pub nodes: Vec<u64>,
    /// Overflow chains the leaves point at: `(first page, value length)`.
    pub chains: Vec<(u64, u64)>,
}

/// Lists the node pages of a tree and the overflow chains of its leaves.
pub fn tree_layout<R: PageRead>(r: &R, root: u64) -> Result<TreeLayout> {
    let (mut nodes, mut chains) = (Vec::new(), Vec::new());
    let mut stack = vec![(root, 0usize)];
    while let Some((no, depth)) = stack.pop() {
        if depth > MAX_DEPTH {
            return Err(Error::corrupt_page(no, "tree deeper than the depth limit"));
        }
        let page = node_page(r, no)?;
        nodes.push(no);
        if node::is_leaf(&page) {
            for i in 0..node::count(&page) {
                if let LeafValue::Overflow { first, len } = node::leaf_value(&page, i) {
                    chains.push((first, len));
                }
            }
        } else {
            for i in 0..=node::count(&page) {
                stack.push((node::child(&page, i), depth + 1));
            }
        }
    }
    Ok(TreeLayout { nodes, chains })
}

/// Frees every page of a tree (nodes and overflow chains), the root included.
pub fn free_all<W: PageWrite>(w: &mut W, root: u64) -> Result<()> {
    let TreeLayout { nodes, chains } = tree_layout(w, root)?;
    for (first, len) in chains {
        overflow::free(w, first, len)?;
    }
    for no in nodes {
        w.free_page(no)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests;
