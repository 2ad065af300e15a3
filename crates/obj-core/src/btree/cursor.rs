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
            if node::is_leaf(&page) {
                let idx = match from {
                    Some(key) => node::search(&page, key).unwrap_or_else(|i| i),
                    None => 0,
                };
                stack.push((page, idx));
                return Ok(Cursor { stack });
            }
            let idx = from.map_or(0, |key| node::child_index(&page, key));
            no = node::child(&page, idx);
            stack.push((page, idx));
        }
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
            if self.stack.len() >= MAX_DEPTH {
                return Err(Error::corrupt_page(
                    child,
                    "tree deeper than the depth limit",
                ));
            }
            let page = node_page(r, child)?;
            self.stack.push((page, 0));
        }
    }

    /// Positions after the last key `< before` (or after the last key), for [`Cursor::prev`].
    pub fn seek_back<R: PageRead>(r: &R, root: u64, before: Option<&[u8]>) -> Result<Cursor> {
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
            // Leaf: the keys < before are cells 0..idx. Branch: child i holds the keys
            // below separator i, so the last key < before lies in child idx (or before it).
            let idx = match before {
                Some(key) => node::search(&page, key).unwrap_or_else(|i| i),
                None => node::count(&page),
            };
            if node::is_leaf(&page) {
                stack.push((page, idx));
                return Ok(Cursor { stack });
            }
            no = node::child(&page, idx);
            stack.push((page, idx));
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
            if self.stack.len() >= MAX_DEPTH {
                return Err(Error::corrupt_page(
                    child,
                    "tree deeper than the depth limit",
                ));
            }
            let page = node_page(r, child)?;
            let end = node::count(&page);
            self.stack.push((page, end));
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
