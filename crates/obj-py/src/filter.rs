//! Conversion of the query builder's filter nodes (`python/obj/query.py`) into the engine's
//! [`Expr`], and of index bounds into key values.
//!
//! Nodes are tuples: `("cmp", path, op, value)` with op one of eq/ne/lt/le/gt/ge,
//! `("in", path, [values])`, `("startswith", path, prefix)`, `("contains", path, value)`,
//! `("exists", path)`, `("is_none", path)`, `("and", [nodes])`, `("or", [nodes])`,
//! `("not", node)`.

use crate::codec::DocType;
use crate::datum::{self, type_name};
use crate::error::InvalidArgumentError;
use obj_core::codec::{Datum, FieldType};
use obj_core::query::{CmpOp, Expr};
use pyo3::prelude::*;
use pyo3::types::PyTuple;

fn bad(msg: String) -> PyErr {
    InvalidArgumentError::new_err(msg)
}

fn value(v: &Bound<'_, PyAny>, path: &str) -> PyResult<Datum> {
    datum::to_datum(v, &format!("filter value for field {path:?}"))
}

/// Converts one filter node; `dt` is the class queried, if any (its schema tells which
/// fields are lists).
pub(crate) fn expr(node: &Bound<'_, PyAny>, dt: Option<&DocType>) -> PyResult<Expr> {
    expr_at(node, dt, 0)
}

fn expr_at(node: &Bound<'_, PyAny>, dt: Option<&DocType>, depth: usize) -> PyResult<Expr> {
    if depth > 256 {
        return Err(bad("filter nested too deeply".into()));
    }
    let t = node.cast::<PyTuple>().map_err(|_| {
        bad(format!(
            "a filter node must be a tuple, got {}",
            type_name(node)
        ))
    })?;
    // Nodes come from `obj.Expr`; a hand-built malformed one is an argument error too.
    let malformed = || bad(format!("malformed filter node {t}"));
    let item = |i: usize| t.get_item(i).map_err(|_| malformed());
    let op: String = item(0)?.extract().map_err(|_| malformed())?;
    let path = || -> PyResult<String> { item(1)?.extract().map_err(|_| malformed()) };
    let children = || -> PyResult<Vec<Expr>> {
        item(1)?
            .try_iter()
            .map_err(|_| malformed())?
            .map(|n| expr_at(&n?, dt, depth + 1))
            .collect()
    };
    Ok(match op.as_str() {
        "cmp" => {
            let path = path()?;
            let op = match item(2)?
                .extract::<String>()
                .map_err(|_| malformed())?
                .as_str()
            {
                "eq" => CmpOp::Eq,
                "ne" => CmpOp::Ne,
                "lt" => CmpOp::Lt,
                "le" => CmpOp::Le,
                "gt" => CmpOp::Gt,
                "ge" => CmpOp::Ge,
                other => return Err(bad(format!("unknown comparison {other:?}"))),
            };
            let value = value(&item(3)?, &path)?;
            Expr::Cmp { path, op, value }
        }
        "in" => {
            let path = path()?;
            let values = item(2)?
                .try_iter()
                .map_err(|_| malformed())?
                .map(|v| value(&v?, &path))
                .collect::<PyResult<_>>()?;
            Expr::In { path, values }
        }
        "startswith" => Expr::StartsWith {
            path: path()?,
            prefix: item(2)?.extract().map_err(|_| malformed())?,
        },
        "contains" => {
            let path = path()?;
            let value = value(&item(2)?, &path)?;
            let known_list = dt.is_some_and(|dt| {
                matches!(
                    dt.field_type(&path),
                    Some(FieldType::List(_) | FieldType::Tuple(_))
                )
            });
            Expr::Contains {
                path,
                value,
                known_list,
            }
        }
        "exists" => Expr::Exists { path: path()? },
        "is_none" => Expr::IsNone { path: path()? },
        "and" => Expr::And(children()?),
        "or" => Expr::Or(children()?),
        "not" => Expr::Not(Box::new(expr_at(&item(1)?, dt, depth + 1)?)),
        other => return Err(bad(format!("unknown filter node {other:?}"))),
    })
}

/// The key values of an index bound: None is unbounded, a tuple a composite (prefix) key,
/// anything else a single value. For a typed class, `bytes` given for a `str` field is
/// taken as its UTF-8 encoding.
pub(crate) fn bound(
    v: &Bound<'_, PyAny>,
    what: &str,
    paths: &[String],
    dt: Option<&DocType>,
) -> PyResult<Option<Vec<Datum>>> {
    if v.is_none() {
        return Ok(None);
    }
    let mut values = datum::key_values(v, what)?;
    if values.len() > paths.len().max(1) {
        return Err(bad(format!(
            "{what} has {} values, but the index has {} field(s)",
            values.len(),
            paths.len()
        )));
    }
    if let Some(dt) = dt {
        for (value, path) in values.iter_mut().zip(paths) {
            if let (Datum::Bytes(b), Some(FieldType::Str)) = (&*value, dt.field_type(path)) {
                if let Ok(s) = std::str::from_utf8(b) {
                    *value = Datum::Str(s.to_owned());
                }
            }
        }
    }
    Ok(Some(values))
}

/// The key values of a unique lookup: a value, a tuple, or bytes for a str field.
pub(crate) fn lookup(
    v: &Bound<'_, PyAny>,
    paths: &[String],
    dt: Option<&DocType>,
) -> PyResult<Vec<Datum>> {
    if v.is_none() {
        return Err(bad(
            "find_unique() needs a value; unique indexes do not list documents whose value \
             is None (use a query with obj.field(name).is_none())"
                .into(),
        ));
    }
    Ok(bound(v, "value", paths, dt)?.unwrap_or_default())
}
