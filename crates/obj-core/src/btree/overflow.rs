//! Overflow chains: values too large for a leaf cell, stored across linked pages.
//!
//! Page layout: `kind u8 (4)`, 7 reserved bytes, `next u64` (0 on the last page), data,
//! CRC trailer. The total length lives in the leaf cell that points at the chain.

use super::{PageRead, PageWrite};
use crate::error::{Error, Result};
use crate::format::{get_u64, put_u64, PageKind, PAGE_TRAILER};

const HDR: usize = 16;

fn chunk(page_size: usize) -> usize {
    page_size - HDR - PAGE_TRAILER
}

pub fn pages_for(page_size: usize, len: u64) -> u64 {
    len.div_ceil(chunk(page_size) as u64)
}

/// Writes `data` into a new chain and returns its first page.
pub fn write<W: PageWrite>(w: &mut W, data: &[u8]) -> Result<u64> {
    let size = chunk(w.page_size());
    let chunks: Vec<&[u8]> = data.chunks(size).collect();
    let mut pages = Vec::with_capacity(chunks.len());
    for _ in &chunks {
        pages.push(w.alloc_page()?);
    }
    for (i, part) in chunks.iter().enumerate() {
        let next = pages.get(i + 1).copied().unwrap_or(0);
        let buf = w.page_new(pages[i])?;
        buf[0] = PageKind::Overflow as u8;
        put_u64(buf, 8, next);
        buf[HDR..HDR + part.len()].copy_from_slice(part);
    }
    Ok(pages[0])
}

/// Reads a whole chain of `len` bytes.
pub fn read<R: PageRead>(r: &R, first: u64, len: u64) -> Result<Vec<u8>> {
    let size = chunk(r.page_size());
    // The length comes from disk: reserve at most a bounded amount up front and let a
    // damaged length fail when the chain runs out, not in the allocator.
    let mut out = Vec::with_capacity(usize::try_from(len).unwrap_or(0).min(16 << 20));
    let mut next = first;
    let mut left = len as usize;
    for _ in 0..pages_for(r.page_size(), len) {
        let page = overflow_page(r, next)?;
        let take = left.min(size);
        out.extend_from_slice(&page[HDR..HDR + take]);
        left -= take;
        next = get_u64(&page, 8);
    }
    if left != 0 {
        return Err(Error::corrupt_page(
            first,
            "overflow chain shorter than its value",
        ));
    }
    Ok(out)
}

/// Page numbers of a chain, for freeing and integrity checks.
pub fn chain<R: PageRead>(r: &R, first: u64, len: u64) -> Result<Vec<u64>> {
    let mut out = Vec::new();
    let mut next = first;
    for _ in 0..pages_for(r.page_size(), len) {
        let page = overflow_page(r, next)?;
        out.push(next);
        next = get_u64(&page, 8);
    }
    Ok(out)
}

pub fn free<W: PageWrite>(w: &mut W, first: u64, len: u64) -> Result<()> {
    for no in chain(w, first, len)? {
        w.free_page(no)?;
    }
    Ok(())
}

fn overflow_page<R: PageRead>(r: &R, no: u64) -> Result<crate::pager::PageBuf> {
    if no == 0 {
        return Err(Error::corrupt("overflow chain ends early"));
    }
    let page = r.page(no)?;
    if page[0] != PageKind::Overflow as u8 {
        return Err(Error::corrupt_page(no, "expected an overflow page"));
    }
    Ok(page)
}
