//! The freelist: trunk pages chained from the meta page, each listing free page numbers.
//!
//! Trunk layout: `kind u8 (5)`, 3 reserved, `count u32`, `next trunk u64`, then `count`
//! page numbers (u64), CRC trailer. A trunk page is itself free space: when its list is
//! empty it is handed out and the next trunk becomes the head.

use crate::error::{Error, Result};
use crate::format::{get_u32, get_u64, put_u32, put_u64, PageKind, PAGE_TRAILER};

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
