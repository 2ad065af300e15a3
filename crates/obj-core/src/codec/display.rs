//! The one rendering of a [`Datum`] in user-facing text (error messages, `explain()`): the
//! value written as Python's `repr` writes the object it decodes to, so a message reads
//! like the code that produced the value: `None`, `True`, `1.5`, `'it''s'` → `"it's"`,
//! `b'k'`, `[1, 'a']`, `{'k': 1}`, `datetime.datetime(2024, 1, 2, 3, 4, 5)`,
//! `datetime.date(2024, 1, 2)`, `UUID('…')`.

use super::calendar::{civil_from_days, MICROS_PER_DAY};
use super::Datum;
use std::fmt::{self, Write};

/// A key of a keyed collection as messages show it: as Python writes the `str` it decodes
/// to (`'user:1'`), or as `bytes` (`b'\xff'`) when it is not UTF-8.
pub fn show_key(key: &[u8]) -> String {
    match std::str::from_utf8(key) {
        Ok(s) => Datum::Str(s.into()).to_string(),
        Err(_) => Datum::Bytes(key.to_vec()).to_string(),
    }
}

impl fmt::Display for Datum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Datum::Null => f.write_str("None"),
            Datum::Bool(true) => f.write_str("True"),
            Datum::Bool(false) => f.write_str("False"),
            Datum::Int(i) => write!(f, "{i}"),
            Datum::Float(x) => write_float(f, *x),
            Datum::Str(s) => write_quoted(
                f,
                "",
                s.chars().map(Unit::Char),
                s.contains('\'') && !s.contains('"'),
            ),
            Datum::Bytes(b) => write_quoted(
                f,
                "b",
                b.iter().map(|&c| Unit::Byte(c)),
                b.contains(&b'\'') && !b.contains(&b'"'),
            ),
            Datum::List(items) => {
                f.write_char('[')?;
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{item}")?;
                }
                f.write_char(']')
            }
            Datum::Map(entries) => {
                f.write_char('{')?;
                for (i, (k, v)) in entries.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{}: {v}", Datum::Str(k.clone()))?;
                }
                f.write_char('}')
            }
            Datum::DateTime {
                micros,
                offset_secs,
            } => write_datetime(f, *micros, *offset_secs),
            Datum::Date(days) => {
                let (y, m, d) = civil_from_days(i64::from(*days));
                write!(f, "datetime.date({y}, {m}, {d})")
            }
            Datum::Uuid(u) => {
                f.write_str("UUID('")?;
                for (i, b) in u.iter().enumerate() {
                    if matches!(i, 4 | 6 | 8 | 10) {
                        f.write_char('-')?;
                    }
                    write!(f, "{b:02x}")?;
                }
                f.write_str("')")
            }
            Datum::Set(members) if members.is_empty() => f.write_str("set()"),
            Datum::Set(members) => {
                f.write_char('{')?;
                for (i, m) in members.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{m}")?;
                }
                f.write_char('}')
            }
            Datum::Vector(v) => {
                f.write_str("obj.Vector([")?;
                for (i, x) in v.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    // The shortest digits that give back the float32, as numpy prints it.
                    if x.is_finite() {
                        write!(f, "{x:?}")?;
                    } else {
                        write_float(f, f64::from(*x))?;
                    }
                }
                f.write_str("])")
            }
        }
    }
}

/// Python's `repr(float)`: the shortest digits that read back to the same value, in
/// positional notation when the decimal exponent is in -4..16, else scientific.
fn write_float(f: &mut fmt::Formatter<'_>, x: f64) -> fmt::Result {
    if x.is_nan() {
        return f.write_str("nan");
    }
    if x.is_infinite() {
        return f.write_str(if x > 0.0 { "inf" } else { "-inf" });
    }
    // `{:e}` gives the shortest round-trip digits: "-1.2345e-7".
    let sci = format!("{x:e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let (sign, mantissa) = match mantissa.strip_prefix('-') {
        Some(m) => ("-", m),
        None => ("", mantissa),
    };
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    f.write_str(sign)?;
    if !(-4..16).contains(&exp) {
        let (first, rest) = digits.split_at(1);
        f.write_str(first)?;
        if !rest.is_empty() {
            write!(f, ".{rest}")?;
        }
        let esign = if exp < 0 { '-' } else { '+' };
        return write!(f, "e{esign}{:02}", exp.unsigned_abs());
    }
    // Decimal point after `point` digits (may be <= 0 or past the digits).
    let point = exp + 1;
    if point <= 0 {
        write!(f, "0.{}{digits}", "0".repeat(point.unsigned_abs() as usize))
    } else {
        let point = point as usize;
        if point >= digits.len() {
            write!(f, "{digits}{}.0", "0".repeat(point - digits.len()))
        } else {
            write!(f, "{}.{}", &digits[..point], &digits[point..])
        }
    }
}

enum Unit {
    Char(char),
    Byte(u8),
}

/// A Python str or bytes literal: single quotes unless the text holds `'` and no `"`.
fn write_quoted(
    f: &mut fmt::Formatter<'_>,
    prefix: &str,
    units: impl Iterator<Item = Unit>,
    double: bool,
) -> fmt::Result {
    let quote = if double { '"' } else { '\'' };
    f.write_str(prefix)?;
    f.write_char(quote)?;
    for unit in units {
        let c = match unit {
            Unit::Char(c) => c,
            Unit::Byte(b) if b.is_ascii() => char::from(b),
            Unit::Byte(b) => {
                write!(f, "\\x{b:02x}")?;
                continue;
            }
        };
        match c {
            '\\' => f.write_str("\\\\")?,
            '\n' => f.write_str("\\n")?,
            '\r' => f.write_str("\\r")?,
            '\t' => f.write_str("\\t")?,
            c if c == quote => write!(f, "\\{c}")?,
            c if printable(c) => f.write_char(c)?,
            c if (c as u32) < 0x100 => write!(f, "\\x{:02x}", c as u32)?,
            c if (c as u32) < 0x10000 => write!(f, "\\u{:04x}", c as u32)?,
            c => write!(f, "\\U{:08x}", c as u32)?,
        }
    }
    f.write_char(quote)
}

/// What Python's `str.isprintable` accepts, close enough for messages: no control
/// characters, no separators other than the space, no common format characters.
fn printable(c: char) -> bool {
    !(c.is_control()
        || matches!(c,
            '\u{a0}' | '\u{ad}' | '\u{1680}' | '\u{2000}'..='\u{200f}' | '\u{2028}'..='\u{202f}'
            | '\u{205f}'..='\u{2064}' | '\u{3000}' | '\u{feff}' | '\u{fff9}'..='\u{fffb}'
            | '\u{e000}'..='\u{f8ff}'))
}

/// `datetime.datetime(Y, M, D, h, m[, s[, us]][, tzinfo=…])`, the local time the value was
/// written as, like Python's repr (seconds and microseconds only when non-zero).
fn write_datetime(
    f: &mut fmt::Formatter<'_>,
    micros: i64,
    offset_secs: Option<i32>,
) -> fmt::Result {
    let local = micros.saturating_add(i64::from(offset_secs.unwrap_or(0)) * 1_000_000);
    let (y, mo, d) = civil_from_days(local.div_euclid(MICROS_PER_DAY));
    let rest = local.rem_euclid(MICROS_PER_DAY);
    let (secs, us) = (rest / 1_000_000, rest % 1_000_000);
    let (h, mi, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    write!(f, "datetime.datetime({y}, {mo}, {d}, {h}, {mi}")?;
    if s != 0 || us != 0 {
        write!(f, ", {s}")?;
    }
    if us != 0 {
        write!(f, ", {us}")?;
    }
    match offset_secs {
        None => {}
        Some(0) => f.write_str(", tzinfo=datetime.timezone.utc")?,
        Some(off) if off > 0 => write!(
            f,
            ", tzinfo=datetime.timezone(datetime.timedelta(seconds={off}))"
        )?,
        // Python normalises a negative timedelta to days=-1 and positive seconds.
        Some(off) => {
            let days = i64::from(off).div_euclid(86_400);
            let secs = i64::from(off).rem_euclid(86_400);
            write!(
                f,
                ", tzinfo=datetime.timezone(datetime.timedelta(days={days}"
            )?;
            if secs != 0 {
                write!(f, ", seconds={secs}")?;
            }
            f.write_str("))")?;
        }
    }
    f.write_char(')')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn show(d: Datum) -> String {
        d.to_string()
    }

    #[test]
    fn values_read_like_python_reprs() {
        assert_eq!(show(Datum::Null), "None");
        assert_eq!(show(Datum::Bool(true)), "True");
        assert_eq!(show(Datum::Int(-42)), "-42");
        assert_eq!(show(Datum::Str("str".into())), "'str'");
        assert_eq!(show(Datum::Str("it's".into())), "\"it's\"");
        assert_eq!(show(Datum::Str("a'\"b".into())), "'a\\'\"b'");
        assert_eq!(
            show(Datum::Str("é\n\u{0}\u{7f}😀\u{200b}".into())),
            "'é\\n\\x00\\x7f😀\\u200b'"
        );
        assert_eq!(show(Datum::Bytes(b"k".to_vec())), "b'k'");
        assert_eq!(
            show(Datum::Bytes(vec![0, 255, b'\'', b'\\'])),
            "b\"\\x00\\xff'\\\\\""
        );
        assert_eq!(
            show(Datum::List(vec![Datum::Int(1), Datum::Str("a".into())])),
            "[1, 'a']"
        );
        assert_eq!(
            show(Datum::Map(vec![("k".into(), Datum::Float(1.0))])),
            "{'k': 1.0}"
        );
        assert_eq!(
            show(Datum::Uuid([
                0x12, 0x34, 0x56, 0x78, 0x12, 0x34, 0x56, 0x78, 0x12, 0x34, 0x56, 0x78, 0x12, 0x34,
                0x56, 0x78
            ])),
            "UUID('12345678-1234-5678-1234-567812345678')"
        );
        assert_eq!(show(Datum::Date(19_723)), "datetime.date(2024, 1, 1)");
        let dt = |micros, offset_secs| Datum::DateTime {
            micros,
            offset_secs,
        };
        // 2024-01-02T03:04:05 as microseconds since the epoch.
        let t = (19_724 * 86_400 + 3 * 3600 + 4 * 60 + 5) * 1_000_000;
        assert_eq!(show(dt(t, None)), "datetime.datetime(2024, 1, 2, 3, 4, 5)");
        assert_eq!(
            show(dt(t - 5_000_000, None)),
            "datetime.datetime(2024, 1, 2, 3, 4)"
        );
        assert_eq!(
            show(dt(t + 7, None)),
            "datetime.datetime(2024, 1, 2, 3, 4, 5, 7)"
        );
        assert_eq!(
            show(dt(t, Some(0))),
            "datetime.datetime(2024, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc)"
        );
        assert_eq!(
            show(dt(t, Some(3600))),
            "datetime.datetime(2024, 1, 2, 4, 4, 5, tzinfo=datetime.timezone(datetime.timedelta(seconds=3600)))"
        );
        assert_eq!(
            show(dt(t, Some(-3600))),
            "datetime.datetime(2024, 1, 2, 2, 4, 5, tzinfo=datetime.timezone(datetime.timedelta(days=-1, seconds=82800)))"
        );
        assert_eq!(
            show(dt(-1, None)),
            "datetime.datetime(1969, 12, 31, 23, 59, 59, 999999)"
        );
    }

    #[test]
    fn floats_read_like_python_reprs() {
        let cases = [
            (1.5, "1.5"),
            (1.0, "1.0"),
            (-0.0, "-0.0"),
            (0.0, "0.0"),
            (100.0, "100.0"),
            (0.1, "0.1"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (1.5e-7, "1.5e-07"),
            (1e15, "1000000000000000.0"),
            (1e16, "1e+16"),
            (1.2345678901234568e17, "1.2345678901234568e+17"),
            (123456.789, "123456.789"),
            (f64::MAX, "1.7976931348623157e+308"),
            (5e-324, "5e-324"),
            (f64::INFINITY, "inf"),
            (f64::NEG_INFINITY, "-inf"),
            (f64::NAN, "nan"),
            (-2.5, "-2.5"),
        ];
        for (x, want) in cases {
            assert_eq!(show(Datum::Float(x)), want, "{x:e}");
        }
    }
}
