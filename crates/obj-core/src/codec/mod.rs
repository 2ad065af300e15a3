//! Document codecs.
//!
//! - [`wire`]: postcard's primitive encodings (varints, zigzag, lengths), shared by all.
//! - [`schema`]: the shape of a typed document, persisted in the catalog.
//! - [`walk`]: the one reader of typed payloads and self-describing values, reporting to a
//!   sink (serde's Deserializer/Visitor split); the engine and the binding both drive it.
//! - [`dynamic`]: reads a typed (positional) payload by its schema into a [`Datum`], and
//!   writes one.
//! - [`datum`]: the self-describing Value codec for dict-native documents, and the
//!   [`Datum`] tree that every payload can be decoded into; its `Display` writes a value
//!   as Python's `repr` would, for every message and `explain()`.
//! - `keys`: the order-preserving key encoding of index entries and sort keys.
//! - [`calendar`]: days since 1970-01-01 to and from dates.

pub mod calendar;
pub mod datum;
mod display;
pub mod dynamic;
pub(crate) mod keys;
pub mod schema;
pub mod walk;
pub mod wire;

pub use datum::Datum;
pub use display::show_key;
pub use keys::prefix_successor;
pub use schema::{EnumType, Field, FieldType, PathLookup, Schema, StructType};

/// The order-preserving index key of a tuple of values (byte order = value order).
pub fn index_key(values: &[Datum]) -> crate::Result<Vec<u8>> {
    keys::encode(values)
}

/// Nesting deeper than this is refused when reading, so damaged or hostile bytes cannot
/// exhaust the stack.
pub const MAX_NESTING: usize = 64;
