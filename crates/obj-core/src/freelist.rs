//! The freelist: trunk pages chained from the meta page, each listing free page numbers.
//!
//! Trunk layout: `kind u8 (5)`, 3 reserved, `count u32`, `next trunk u64`, then `count`
//! page numbers (u64), CRC trailer. A trunk page is itself free space: when its list is
//! empty it is handed out and the next trunk becomes the head.

use crate::error::{Error, Result};
use crate::format::{get_u32, get_u64, put_u32, put_u64, Meta, PageKind, PAGE_TRAILER};
use std::collections::VecDeque;

pub const HDR: usize = 16;

pub fn capacity(page_size: usize) -> usize {
    (page_size - HDR - PAGE_TRAILER) / 8
}

pub fn init(page: &mut [u8], next: u64) {
    page.fill(0);
    page[0] = PageKind::FreeTrunk as u8;
    put_u64(page, 8, next);
}

pub fn count(page: &[u8]) -> usize {
    get_u32(page, 4) as usize
}

pub fn next(page: &[u8]) -> u64 {
    get_u64(page, 8)
}

pub fn entry(page: &[u8], i: usize) -> u64 {
    get_u64(page, HDR + 8 * i)
}

/// Appends a page number; false if the trunk is full.
pub fn push(page: &mut [u8], no: u64) -> bool {
    let n = count(page);
    if n >= capacity(page.len()) {
        return false;
    }
    put_u64(page, HDR + 8 * n, no);
    put_u32(page, 4, (n + 1) as u32);
    true
}

/// Removes and returns the last page number, if any.
pub fn pop(page: &mut [u8]) -> Option<u64> {
    let n = count(page);
    if n == 0 {
        return None;
    }
    put_u32(page, 4, (n - 1) as u32);
    Some(entry(page, n - 1))
}

pub fn validate(no: u64, page: &[u8]) -> Result<()> {
    if count(page) > capacity(page.len()) {
        return Err(Error::corrupt_page(no, "freelist trunk count out of range"));
    }
    Ok(())
}

/// What the allocator reads and changes: the header's freelist fields and page count, and
/// the trunk pages (a write transaction's private copies).
pub(crate) trait FreePages {
    fn meta_mut(&mut self) -> &mut Meta;
    fn trunk_mut(&mut self, no: u64) -> Result<&mut [u8]>;
    /// A zeroed private page `no`.
    fn fresh(&mut self, no: u64) -> Result<&mut [u8]>;
    /// Forgets the private copy of `no`, which is being freed.
    fn discard(&mut self, no: u64);
}

/// Hands out and takes back pages. Normally through the freelist (a trunk's entries first,
/// then the trunk itself, then a new page at the end of the file); while compacting,
/// through the holes below the target size, lowest first, and nothing goes to the freelist
/// until compaction ends.
#[derive(Debug, Default)]
pub(crate) struct Allocator {
    holes: Option<VecDeque<u64>>,
}

impl Allocator {
    /// Compaction mode, handing out `holes` (ascending) first.
    pub(crate) fn compacting(holes: Vec<u64>) -> Allocator {
        Allocator {
            holes: Some(VecDeque::from(holes)),
        }
    }

    /// Ends compaction mode: the holes no page was moved into (freed pages included).
    pub(crate) fn finish_compacting(&mut self) -> Vec<u64> {
        self.holes.take().map(Vec::from).unwrap_or_default()
    }

    /// While compacting: the lowest hole not handed out yet.
    pub(crate) fn next_hole(&mut self) -> Option<u64> {
        self.holes.as_mut()?.pop_front()
    }

    pub(crate) fn alloc(&mut self, p: &mut impl FreePages) -> Result<u64> {
        let meta = p.meta_mut();
        if let Some(holes) = &mut self.holes {
            if let Some(no) = holes.pop_front() {
                return Ok(no);
            }
        }
        let head = meta.free_head;
        if head == 0 || self.holes.is_some() {
            let no = meta.page_count;
            meta.page_count += 1;
            return Ok(no);
        }
        let trunk = p.trunk_mut(head)?;
        if trunk[0] != PageKind::FreeTrunk as u8 {
            return Err(Error::corrupt_page(head, "expected a freelist trunk"));
        }
        let (no, next) = match pop(trunk) {
            Some(no) => (no, None),
            None => (head, Some(next(trunk))),
        };
        let meta = p.meta_mut();
        if let Some(next) = next {
            meta.free_head = next;
        }
        if no == 0 || no >= meta.page_count {
            return Err(Error::corrupt_page(
                head,
                format!("freelist names page {no} out of range"),
            ));
        }
        meta.free_count = meta
            .free_count
            .checked_sub(1)
            .ok_or_else(|| Error::corrupt_page(0, "free page count underflow"))?;
        Ok(no)
    }

    pub(crate) fn free(&mut self, p: &mut impl FreePages, no: u64) -> Result<()> {
        debug_assert!(no != 0 && no < p.meta_mut().page_count);
        p.discard(no);
        if let Some(holes) = &mut self.holes {
            holes.push_back(no);
            return Ok(());
        }
        let head = p.meta_mut().free_head;
        if head != 0 {
            let trunk = p.trunk_mut(head)?;
            if trunk[0] != PageKind::FreeTrunk as u8 {
                return Err(Error::corrupt_page(head, "expected a freelist trunk"));
            }
            if push(trunk, no) {
                p.meta_mut().free_count += 1;
                return Ok(());
            }
        }
        init(p.fresh(no)?, head);
        let meta = p.meta_mut();
        meta.free_head = no;
        meta.free_count += 1;
        Ok(())
    }
}
