//! Postcard's primitive encodings: unsigned LEB128 varints, zigzag for signed integers,
//! little-endian f64, length-prefixed byte strings.

use crate::error::{Error, Result};

/// Unsigned LEB128, as postcard writes it.
pub fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Reads an unsigned LEB128 at `*at`, advancing it; None if truncated or over-long.
pub fn get_varint(bytes: &[u8], at: &mut usize) -> Option<u64> {
    let mut v = 0u64;
    for shift in (0..70).step_by(7) {
        let b = *bytes.get(*at)?;
        *at += 1;
        if shift == 63 && b > 1 {
            return None;
        }
        v |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

/// Appends an unsigned varint.
pub fn put_uvarint(out: &mut Vec<u8>, v: u64) {
    put_varint(out, v)
}

/// Appends a zigzag-encoded signed varint.
pub fn put_ivarint(out: &mut Vec<u8>, v: i64) {
    put_uvarint(out, ((v << 1) ^ (v >> 63)) as u64)
}

/// Appends a little-endian f64.
pub fn put_f64(out: &mut Vec<u8>, v: f64) {
    out.extend_from_slice(&v.to_le_bytes())
}

/// Appends a varint length and the bytes.
pub fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    put_uvarint(out, b.len() as u64);
    out.extend_from_slice(b);
}

/// A datetime's body, the same in the typed and the self-describing codecs: zigzag
/// microseconds since the epoch, then a has-offset byte and the offset in seconds.
pub fn put_datetime(out: &mut Vec<u8>, micros: i64, offset_secs: Option<i32>) {
    put_ivarint(out, micros);
    match offset_secs {
        Some(o) => {
            out.push(1);
            put_ivarint(out, i64::from(o));
        }
        None => out.push(0),
    }
}

/// Most zero-sized values (`list[None]` items, empty tuples) one payload may claim in all.
pub const MAX_EMPTY_ITEMS: u64 = 1 << 16;

/// A cursor over encoded bytes; every read checks bounds and reports damage as corruption.
pub struct WireReader<'a> {
    buf: &'a [u8],
    pos: usize,
    /// Zero-sized items (`list[None]`, empty tuples) left to this payload: nested sequences
    /// must not multiply the per-sequence limit into unbounded work.
    empty_budget: u64,
}

impl<'a> WireReader<'a> {
    /// A reader at the start of `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        WireReader {
            buf,
            pos: 0,
            empty_budget: MAX_EMPTY_ITEMS,
        }
    }

    /// Bytes consumed so far.
    pub fn position(&self) -> usize {
        self.pos
    }

    /// True when every byte has been read.
    pub fn is_empty(&self) -> bool {
        self.pos >= self.buf.len()
    }

    fn damaged(&self, what: &str) -> Error {
        Error::corrupt(format!(
            "document payload damaged at byte {}: {what}",
            self.pos
        ))
    }

    /// One byte.
    pub fn u8(&mut self) -> Result<u8> {
        let b = *self
            .buf
            .get(self.pos)
            .ok_or_else(|| self.damaged("truncated"))?;
        self.pos += 1;
        Ok(b)
    }

    /// An unsigned varint.
    pub fn uvarint(&mut self) -> Result<u64> {
        get_varint(self.buf, &mut self.pos).ok_or_else(|| self.damaged("bad varint"))
    }

    /// A zigzag-encoded signed varint.
    pub fn ivarint(&mut self) -> Result<i64> {
        let z = self.uvarint()?;
        Ok(((z >> 1) as i64) ^ -((z & 1) as i64))
    }

    /// A little-endian f64.
    pub fn f64(&mut self) -> Result<f64> {
        let b = self.take(8)?;
        let mut x = [0u8; 8];
        x.copy_from_slice(b);
        Ok(f64::from_le_bytes(x))
    }

    /// A bool byte (0 or 1; anything else is damage).
    pub fn bool(&mut self) -> Result<bool> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(self.damaged("bad bool")),
        }
    }

    /// The next byte, left unread (None at the end).
    pub fn peek(&self) -> Option<u8> {
        self.buf.get(self.pos).copied()
    }

    /// The next `n` bytes, borrowed.
    pub fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|e| *e <= self.buf.len())
            .ok_or_else(|| self.damaged("truncated"))?;
        let out = &self.buf[self.pos..end];
        self.pos = end;
        Ok(out)
    }

    /// A length-prefixed byte string, borrowed.
    pub fn bytes(&mut self) -> Result<&'a [u8]> {
        let n = self.uvarint()?;
        let n = usize::try_from(n).map_err(|_| self.damaged("length too large"))?;
        self.take(n)
    }

    /// A length-prefixed UTF-8 string, borrowed (invalid UTF-8 is damage).
    pub fn str(&mut self) -> Result<&'a str> {
        let b = self.bytes()?;
        std::str::from_utf8(b).map_err(|_| self.damaged("string is not UTF-8"))
    }

    /// A datetime's body (as [`put_datetime`] writes it): microseconds and the offset.
    pub fn datetime(&mut self) -> Result<(i64, Option<i32>)> {
        let micros = self.ivarint()?;
        let offset_secs = if self.bool()? {
            Some(
                i32::try_from(self.ivarint()?)
                    .map_err(|_| Error::corrupt("offset out of range"))?,
            )
        } else {
            None
        };
        Ok((micros, offset_secs))
    }

    /// A date: zigzag days since 1970-01-01.
    pub fn date(&mut self) -> Result<i32> {
        i32::try_from(self.ivarint()?).map_err(|_| Error::corrupt("date out of range"))
    }

    /// 16 bytes of a UUID.
    pub fn uuid(&mut self) -> Result<[u8; 16]> {
        let mut u = [0u8; 16];
        u.copy_from_slice(self.take(16)?);
        Ok(u)
    }

    /// A sequence length, refused if it could not possibly fit in the bytes left (each item
    /// takes at least `min_item` bytes).
    pub fn len(&mut self, min_item: usize) -> Result<usize> {
        let n = self.uvarint()?;
        let left = (self.buf.len() - self.pos) as u64;
        let limit = if min_item == 0 {
            self.empty_budget
        } else {
            left / min_item as u64
        };
        if n > limit {
            return Err(self.damaged("sequence longer than the payload"));
        }
        if min_item == 0 {
            self.empty_budget -= n;
        }
        usize::try_from(n).map_err(|_| self.damaged("length too large"))
    }

    /// Fails unless every byte was consumed.
    pub fn finish(&self) -> Result<()> {
        if self.pos != self.buf.len() {
            return Err(self.damaged("trailing bytes"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_match_postcard() {
        for v in [0u64, 1, 127, 128, 300, u32::MAX as u64, u64::MAX] {
            let mut ours = Vec::new();
            put_varint(&mut ours, v);
            assert_eq!(ours, postcard::to_allocvec(&v).unwrap());
            let mut at = 0;
            assert_eq!(get_varint(&ours, &mut at), Some(v));
            assert_eq!(at, ours.len());
        }
        let mut at = 0;
        assert_eq!(get_varint(&[0xff; 11], &mut at), None);
    }

    #[test]
    fn primitives_match_postcard() {
        for v in [0i64, -1, 1, i64::MIN, i64::MAX, 12345, -987654321] {
            let mut ours = Vec::new();
            put_ivarint(&mut ours, v);
            assert_eq!(ours, postcard::to_allocvec(&v).unwrap());
            assert_eq!(WireReader::new(&ours).ivarint().unwrap(), v);
        }
        for v in [0.0f64, -0.0, 1.5, f64::INFINITY, f64::MIN_POSITIVE] {
            let mut ours = Vec::new();
            put_f64(&mut ours, v);
            assert_eq!(ours, postcard::to_allocvec(&v).unwrap());
            assert_eq!(WireReader::new(&ours).f64().unwrap().to_bits(), v.to_bits());
        }
        let mut ours = Vec::new();
        put_bytes(&mut ours, "héllo".as_bytes());
        assert_eq!(ours, postcard::to_allocvec("héllo").unwrap());
        assert_eq!(WireReader::new(&ours).str().unwrap(), "héllo");
    }

    #[test]
    fn zero_sized_items_share_one_budget_per_payload() {
        // Two sequences of zero-sized items: together they may not exceed the budget.
        let mut p = Vec::new();
        put_uvarint(&mut p, MAX_EMPTY_ITEMS);
        put_uvarint(&mut p, 1);
        let mut r = WireReader::new(&p);
        assert_eq!(r.len(0).unwrap() as u64, MAX_EMPTY_ITEMS);
        assert!(r.len(0).is_err());
    }

    #[test]
    fn damage_is_an_error() {
        assert!(WireReader::new(&[5, b'a']).str().is_err());
        assert!(WireReader::new(&[2, 0xff, 0xfe]).str().is_err());
        assert!(WireReader::new(&[1, 2, 3]).f64().is_err());
        assert!(WireReader::new(&[0xff, 0xff, 0xff, 0xff, 0x0f])
            .len(1)
            .is_err());
        assert!(WireReader::new(&[7]).bool().is_err());
    }
}
