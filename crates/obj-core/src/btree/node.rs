//! Slotted B+tree node pages. Layout (see `docs/format.md`, "B+tree pages"):
//!
//! ```text
//! 0   kind u8 (2 branch, 3 leaf)   1 reserved   2 cell count u16   4 content start u32
//! 8   rightmost child u64 (branch; 0 in a leaf)
//! 16  cell pointer array, u16 offsets in key order
//! ... free space ...
//! content start .. page end - 4: cells, packed from the end
//! last 4 bytes: CRC32 trailer
//! leaf cell:   klen u16, vflag u8 (0 inline, 1 overflow), vlen u32, key, value | first overflow page u64
//! branch cell: klen u16, child u64, key      (child holds keys < key)
//! ```
//!
//! Pages read from disk pass [`validate`] once, so accessors can index without re-checking.

use crate::error::{Error, Result};
use crate::format::{get_u16, get_u32, get_u64, put_u16, put_u32, put_u64, PageKind, PAGE_TRAILER};

pub const HEADER: usize = 16;
pub const LEAF_CELL_HDR: usize = 7;
pub const BRANCH_CELL_HDR: usize = 10;
pub const VFLAG_INLINE: u8 = 0;
pub const VFLAG_OVERFLOW: u8 = 1;

/// Largest cell kept in a node: two sevenths of the usable space (with its slot), so a
/// split always finds a point where both halves fit (the larger half holds at most half
/// the bytes plus one cell), and a 4 KiB page holds keys of 1 KiB and more (format 2;
/// format 1 kept a quarter).
pub fn max_cell(page_size: usize) -> usize {
    (page_size - HEADER - PAGE_TRAILER) * 2 / 7 - 2
}

/// Longest key a tree accepts for this page size.
pub fn max_key(page_size: usize) -> usize {
    max_cell(page_size) - LEAF_CELL_HDR - 8
}

pub fn kind(page: &[u8]) -> u8 {
    page[0]
}
pub fn is_leaf(page: &[u8]) -> bool {
    page[0] == PageKind::Leaf as u8
}
pub fn count(page: &[u8]) -> usize {
    get_u16(page, 2) as usize
}
fn content_start(page: &[u8]) -> usize {
    get_u32(page, 4) as usize
}
pub fn right_child(page: &[u8]) -> u64 {
    get_u64(page, 8)
}
pub fn set_right_child(page: &mut [u8], child: u64) {
    put_u64(page, 8, child)
}
fn ptr(page: &[u8], i: usize) -> usize {
    get_u16(page, HEADER + 2 * i) as usize
}
fn end(page: &[u8]) -> usize {
    page.len() - PAGE_TRAILER
}

/// An empty node of the given kind.
pub fn init(page: &mut [u8], kind: PageKind) {
    page.fill(0);
    page[0] = kind as u8;
    let e = end(page) as u32;
    put_u32(page, 4, e);
}

/// Size in bytes of the cell at `off`.
fn cell_len_at(page: &[u8], off: usize) -> usize {
    let klen = get_u16(page, off) as usize;
    if is_leaf(page) {
        let vlen = get_u32(page, off + 3) as usize;
        LEAF_CELL_HDR
            + klen
            + if page[off + 2] == VFLAG_INLINE {
                vlen
            } else {
                8
            }
    } else {
        BRANCH_CELL_HDR + klen
    }
}

pub fn cell(page: &[u8], i: usize) -> &[u8] {
    let off = ptr(page, i);
    &page[off..off + cell_len_at(page, off)]
}

pub fn key(page: &[u8], i: usize) -> &[u8] {
    let off = ptr(page, i);
    let klen = get_u16(page, off) as usize;
    let hdr = if is_leaf(page) {
        LEAF_CELL_HDR
    } else {
        BRANCH_CELL_HDR
    };
    &page[off + hdr..off + hdr + klen]
}

/// Key of a standalone cell (as built by `leaf_cell`/`branch_cell`).
pub fn cell_key(cell: &[u8], leaf: bool) -> &[u8] {
    let klen = get_u16(cell, 0) as usize;
    let hdr = if leaf { LEAF_CELL_HDR } else { BRANCH_CELL_HDR };
    &cell[hdr..hdr + klen]
}

/// Child pointer of a standalone branch cell.
pub fn cell_child(cell: &[u8]) -> u64 {
    get_u64(cell, 2)
}

pub fn child(page: &[u8], i: usize) -> u64 {
    if i == count(page) {
        right_child(page)
    } else {
        get_u64(page, ptr(page, i) + 2)
    }
}

pub fn set_child(page: &mut [u8], i: usize, child: u64) {
    if i == count(page) {
        set_right_child(page, child)
    } else {
        let off = ptr(page, i);
        put_u64(page, off + 2, child)
    }
}

/// The value stored in a leaf cell.
pub enum LeafValue<'a> {
    Inline(&'a [u8]),
    Overflow { first: u64, len: u64 },
}

pub fn leaf_value(page: &[u8], i: usize) -> LeafValue<'_> {
    let off = ptr(page, i);
    let klen = get_u16(page, off) as usize;
    let vlen = get_u32(page, off + 3) as usize;
    let at = off + LEAF_CELL_HDR + klen;
    if page[off + 2] == VFLAG_INLINE {
        LeafValue::Inline(&page[at..at + vlen])
    } else {
        LeafValue::Overflow {
            first: get_u64(page, at),
            len: vlen as u64,
        }
    }
}

/// Points an overflow cell at a new first page (after the chain moved).
pub fn set_overflow_first(page: &mut [u8], i: usize, first: u64) {
    let off = ptr(page, i);
    debug_assert_eq!(page[off + 2], VFLAG_OVERFLOW);
    let klen = get_u16(page, off) as usize;
    put_u64(page, off + LEAF_CELL_HDR + klen, first);
}

/// Byte range of an inline value inside the page, for zero-copy reads.
pub fn inline_range(page: &[u8], i: usize) -> Option<std::ops::Range<usize>> {
    let off = ptr(page, i);
    if page[off + 2] != VFLAG_INLINE {
        return None;
    }
    let klen = get_u16(page, off) as usize;
    let vlen = get_u32(page, off + 3) as usize;
    let at = off + LEAF_CELL_HDR + klen;
    Some(at..at + vlen)
}

pub fn leaf_cell(key: &[u8], value: &[u8]) -> Vec<u8> {
    let mut c = Vec::with_capacity(LEAF_CELL_HDR + key.len() + value.len());
    c.extend_from_slice(&(key.len() as u16).to_le_bytes());
    c.push(VFLAG_INLINE);
    c.extend_from_slice(&(value.len() as u32).to_le_bytes());
    c.extend_from_slice(key);
    c.extend_from_slice(value);
    c
}

pub fn leaf_overflow_cell(key: &[u8], len: u32, first: u64) -> Vec<u8> {
    let mut c = Vec::with_capacity(LEAF_CELL_HDR + key.len() + 8);
    c.extend_from_slice(&(key.len() as u16).to_le_bytes());
    c.push(VFLAG_OVERFLOW);
    c.extend_from_slice(&len.to_le_bytes());
    c.extend_from_slice(key);
    c.extend_from_slice(&first.to_le_bytes());
    c
}

pub fn branch_cell(key: &[u8], child: u64) -> Vec<u8> {
    let mut c = Vec::with_capacity(BRANCH_CELL_HDR + key.len());
    c.extend_from_slice(&(key.len() as u16).to_le_bytes());
    c.extend_from_slice(&child.to_le_bytes());
    c.extend_from_slice(key);
    c
}

/// Binary search: `Ok(i)` if key i equals `key`, else `Err(i)` with i the insert position.
pub fn search(page: &[u8], key: &[u8]) -> std::result::Result<usize, usize> {
    use std::cmp::Ordering;
    let hdr = if is_leaf(page) {
        LEAF_CELL_HDR
    } else {
        BRANCH_CELL_HDR
    };
    // Document ids are 8-byte big-endian keys: compare them as integers, not with memcmp.
    let key8 = <[u8; 8]>::try_from(key).ok().map(u64::from_be_bytes);
    let (mut lo, mut hi) = (0usize, count(page));
    while lo < hi {
        let mid = (lo + hi) / 2;
        let off = ptr(page, mid);
        let klen = get_u16(page, off) as usize;
        let k = &page[off + hdr..off + hdr + klen];
        let ord = match (key8, <[u8; 8]>::try_from(k)) {
            (Some(want), Ok(k)) => u64::from_be_bytes(k).cmp(&want),
            _ => k.cmp(key),
        };
        match ord {
            Ordering::Less => lo = mid + 1,
            Ordering::Greater => hi = mid,
            Ordering::Equal => return Ok(mid),
        }
    }
    Err(lo)
}

/// Index of the child of a branch that covers `key`.
pub fn child_index(page: &[u8], key: &[u8]) -> usize {
    match search(page, key) {
        Ok(i) => i + 1,
        Err(i) => i,
    }
}

/// Bytes used by cells and their pointers.
pub fn used(page: &[u8]) -> usize {
    (0..count(page))
        .map(|i| cell_len_at(page, ptr(page, i)) + 2)
        .sum()
}

/// Bytes available to cells and pointers in an empty node.
pub fn capacity(page_size: usize) -> usize {
    page_size - HEADER - PAGE_TRAILER
}

/// Inserts `cell` at position `i`; returns false (page unchanged) if it cannot fit.
pub fn insert_cell(page: &mut [u8], i: usize, cell: &[u8]) -> bool {
    let n = count(page);
    let need = cell.len() + 2;
    let gap = content_start(page) - (HEADER + 2 * n);
    if gap < need {
        if capacity(page.len()).saturating_sub(used(page)) < need {
            return false;
        }
        compact(page);
    }
    let start = content_start(page) - cell.len();
    page[start..start + cell.len()].copy_from_slice(cell);
    put_u32(page, 4, start as u32);
    let at = HEADER + 2 * i;
    page.copy_within(at..HEADER + 2 * n, at + 2);
    put_u16(page, at, start as u16);
    put_u16(page, 2, (n + 1) as u16);
    true
}

/// Removes the cell at `i` (its bytes become garbage until the next compaction).
pub fn remove_cell(page: &mut [u8], i: usize) {
    let n = count(page);
    let at = HEADER + 2 * i;
    page.copy_within(at + 2..HEADER + 2 * n, at);
    put_u16(page, 2, (n - 1) as u16);
    if n == 1 {
        let e = end(page) as u32;
        put_u32(page, 4, e);
    }
}

/// Copies of all cells, in order.
pub fn cells(page: &[u8]) -> Vec<Vec<u8>> {
    (0..count(page)).map(|i| cell(page, i).to_vec()).collect()
}

/// Rewrites the node with the given cells (which must fit).
pub fn rebuild(page: &mut [u8], kind: PageKind, cells: &[Vec<u8>], right: u64) {
    init(page, kind);
    set_right_child(page, right);
    for (i, c) in cells.iter().enumerate() {
        let ok = insert_cell(page, i, c);
        debug_assert!(ok, "rebuild with cells that do not fit");
    }
}

fn compact(page: &mut [u8]) {
    let kind = if is_leaf(page) {
        PageKind::Leaf
    } else {
        PageKind::Branch
    };
    let right = right_child(page);
    let cells = cells(page);
    rebuild(page, kind, &cells, right);
}

/// Structural check of a node page from disk: every offset and length stays inside the page.
pub fn validate(no: u64, page: &[u8]) -> Result<()> {
    let bad = |msg: &str| Error::corrupt_page(no, msg);
    match PageKind::of(page[0]) {
        Some(PageKind::Branch) | Some(PageKind::Leaf) => {}
        Some(PageKind::Overflow) | Some(PageKind::FreeTrunk) => return Ok(()),
        None => return Err(bad("unknown page kind")),
    }
    let leaf = is_leaf(page);
    let n = count(page);
    let e = end(page);
    let start = content_start(page);
    if HEADER + 2 * n > start || start > e {
        return Err(bad("cell area out of bounds"));
    }
    for i in 0..n {
        let off = ptr(page, i);
        let hdr = if leaf { LEAF_CELL_HDR } else { BRANCH_CELL_HDR };
        if off < start || off + hdr > e {
            return Err(bad("cell pointer out of bounds"));
        }
        let klen = get_u16(page, off) as usize;
        let len = if leaf {
            let vlen = get_u32(page, off + 3) as usize;
            match page[off + 2] {
                VFLAG_INLINE => hdr + klen + vlen,
                VFLAG_OVERFLOW => hdr + klen + 8,
                _ => return Err(bad("unknown value flag")),
            }
        } else {
            hdr + klen
        };
        if off + len > e {
            return Err(bad("cell runs past the page end"));
        }
    }
    if used(page) > capacity(page.len()) {
        return Err(bad("cells overlap"));
    }
    if !leaf && right_child(page) == 0 {
        return Err(bad("branch without a rightmost child"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaf() -> Vec<u8> {
        let mut p = vec![0u8; 4096];
        init(&mut p, PageKind::Leaf);
        p
    }

    #[test]
    fn insert_search_remove_keep_order() {
        let mut p = leaf();
        for k in [5u64, 1, 9, 3, 7] {
            let key = k.to_be_bytes();
            let i = search(&p, &key).unwrap_err();
            assert!(insert_cell(&mut p, i, &leaf_cell(&key, b"v")));
        }
        let keys: Vec<u64> = (0..count(&p))
            .map(|i| u64::from_be_bytes(key(&p, i).try_into().unwrap()))
            .collect();
        assert_eq!(keys, [1, 3, 5, 7, 9]);
        assert_eq!(search(&p, &7u64.to_be_bytes()), Ok(3));
        remove_cell(&mut p, 3);
        assert_eq!(search(&p, &7u64.to_be_bytes()), Err(3));
        validate(1, &p).unwrap();
    }

    #[test]
    fn full_page_refuses_then_compaction_reclaims_garbage() {
        let mut p = leaf();
        let value = vec![1u8; 100];
        let mut n = 0u64;
        while insert_cell(&mut p, n as usize, &leaf_cell(&n.to_be_bytes(), &value)) {
            n += 1;
        }
        assert!(n > 30);
        let before = count(&p);
        // Free half the cells; their space is reusable only through compaction.
        for i in (0..before).rev().step_by(2) {
            remove_cell(&mut p, i);
        }
        let cell = leaf_cell(&u64::MAX.to_be_bytes(), &value);
        let at = count(&p);
        assert!(insert_cell(&mut p, at, &cell));
        validate(1, &p).unwrap();
    }

    #[test]
    fn validate_rejects_out_of_bounds_pointers() {
        let mut p = leaf();
        assert!(insert_cell(&mut p, 0, &leaf_cell(b"k", b"v")));
        put_u16(&mut p, HEADER, 4095);
        assert!(validate(1, &p).is_err());
        let mut q = leaf();
        q[0] = 77;
        assert!(validate(1, &q).is_err());
    }
}
