//! Where a record is, as messages name it: a document id, or a key of a keyed collection.

use obj_core::codec::show_key;
use obj_core::Pk;

/// Where a record is, for messages: a document id, or a key of a keyed collection.
#[derive(Clone, Copy)]
pub(crate) enum At<'a> {
    Id(u64),
    Key(&'a [u8]),
}

impl<'a> From<&'a Pk> for At<'a> {
    fn from(pk: &'a Pk) -> Self {
        match pk {
            Pk::Id(id) => At::Id(*id),
            Pk::Key(key) => At::Key(key),
        }
    }
}

impl At<'_> {
    /// The record named as the user would name it, and how to read it by name instead.
    pub(crate) fn describe(self, collection: &str) -> (String, String) {
        match self {
            At::Id(id) => (
                format!("document {id}"),
                format!("get({collection:?}, {id})"),
            ),
            At::Key(key) => {
                let shown = show_key(key);
                (
                    format!("the document under key {shown}"),
                    format!("db.store({collection:?})[{shown}]"),
                )
            }
        }
    }
}
