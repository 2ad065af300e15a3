//! Ordered iteration over a tree with an explicit root-to-leaf stack, forwards
//! ([`Cursor::seek`], [`Cursor::next`]) or backwards ([`Cursor::seek_back`],
//! [`Cursor::prev`]). A cursor walks the way it was positioned.

use super::{node, node_page, PageRead, MAX_DEPTH};
use crate::error::{Error, Result};
use crate::pager::PageBuf;

/// A position in a tree. Holds shared page images, so iterating a read snapshot copies
/// nothing but the values the caller asks for.
pub struct Cursor {
    /// Nodes from the root down; for a branch, the child currently entered; for a leaf,
    /// the gap the cursor sits in (cell `idx` follows it, cell `idx - 1` precedes it).
    stack: Vec<(PageBuf, usize)>,
}

impl Cursor {
    /// Positions before the first key `>= from` (or before the first key).
    pub fn seek<R: PageRead>(r: &R, root: u64, from: Option<&[u8]>) -> Result<Cursor> {
        Self::descend(r, root, |page, leaf| match from {
            Some(key) if leaf => node::search(page, key).unwrap_or_else(|i| i),
            Some(key) => node::child_index(page, key),
            None => 0,
        })
    }

    /// Positions after the last key `< before` (or after the last key), for [`Cursor::prev`].
    pub fn seek_back<R: PageRead>(r: &R, root: u64, before: Option<&[u8]>) -> Result<Cursor> {
        // Leaf: the keys < before are cells 0..idx. Branch: child i holds the keys below
        // separator i, so the last key < before lies in child idx (or before it).
        Self::descend(r, root, |page, _| match before {
            Some(key) => node::search(page, key).unwrap_or_else(|i| i),
            None => node::count(page),
        })
    }

    /// Walks from the root to a leaf, taking at each node the position `pick(page, is_leaf)`
    /// names (for a branch, the child to enter).
    fn descend<R: PageRead>(
        r: &R,
        root: u64,
        pick: impl Fn(&[u8], bool) -> usize,
    ) -> Result<Cursor> {
        let mut stack = Vec::with_capacity(8);
        let mut no = root;
        loop {
            if stack.len() >= MAX_DEPTH {
                return Err(Error::corrupt_page(
                    root,
                    "tree deeper than the depth limit",
                ));
            }
            let page = node_page(r, no)?;
            let leaf = node::is_leaf(&page);
            let idx = pick(&page, leaf);
            if leaf {
                stack.push((page, idx));
                return Ok(Cursor { stack });
            }
            no = node::child(&page, idx);
            stack.push((page, idx));
        }
    }

    /// Enters `child` of the node on top of the stack, at its first gap or (`at_end`) its last.
    fn enter<R: PageRead>(&mut self, r: &R, child: u64, at_end: bool) -> Result<()> {
        if self.stack.len() >= MAX_DEPTH {
            return Err(Error::corrupt_page(
                child,
                "tree deeper than the depth limit",
            ));
        }
        let page = node_page(r, child)?;
        let idx = if at_end { node::count(&page) } else { 0 };
        self.stack.push((page, idx));
        Ok(())
    }

    /// The next leaf entry as (leaf page, cell index), or None at the end.
    pub fn next<R: PageRead>(&mut self, r: &R) -> Result<Option<(PageBuf, usize)>> {
        loop {
            let Some((page, idx)) = self.stack.last_mut() else {
                return Ok(None);
            };
            if node::is_leaf(page) {
                if *idx < node::count(page) {
                    let out = (page.clone(), *idx);
                    *idx += 1;
                    return Ok(Some(out));
                }
                self.pop_and_advance();
                continue;
            }
            if *idx > node::count(page) {
                self.pop_and_advance();
                continue;
            }
            let child = node::child(page, *idx);
            self.enter(r, child, false)?;
        }
    }

    /// The previous leaf entry as (leaf page, cell index), or None at the start.
    pub fn prev<R: PageRead>(&mut self, r: &R) -> Result<Option<(PageBuf, usize)>> {
        loop {
            let Some((page, idx)) = self.stack.last_mut() else {
                return Ok(None);
            };
            if node::is_leaf(page) {
                if *idx > 0 {
                    *idx -= 1;
                    return Ok(Some((page.clone(), *idx)));
                }
                self.pop_and_retreat();
                continue;
            }
            let child = node::child(page, *idx);
            self.enter(r, child, true)?;
        }
    }

    /// Leaves an exhausted node and moves its parent to the child before (leaving every
    /// ancestor whose first child that was).
    fn pop_and_retreat(&mut self) {
        self.stack.pop();
        while let Some((_, idx)) = self.stack.last_mut() {
            if *idx > 0 {
                *idx -= 1;
                return;
            }
            self.stack.pop();
        }
    }

    fn pop_and_advance(&mut self) {
        self.stack.pop();
        if let Some((_, idx)) = self.stack.last_mut() {
            *idx += 1;
        }
    }
}
