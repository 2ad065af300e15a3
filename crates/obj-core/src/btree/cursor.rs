//! Ordered iteration over a tree with an explicit root-to-leaf stack.

use super::{node, node_page, PageRead, MAX_DEPTH};
use crate::error::{Error, Result};
use crate::pager::PageBuf;

/// A position in a tree. Holds shared page images, so iterating a read snapshot copies
/// nothing but the values the caller asks for.
pub struct Cursor {
    /// Nodes from the root down; for a branch, the child currently entered.
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

    fn pop_and_advance(&mut self) {
        self.stack.pop();
        if let Some((_, idx)) = self.stack.last_mut() {
            *idx += 1;
        }
    }
}
