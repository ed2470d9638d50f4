//! Writing messages as JSON objects with their attributes in a fixed, documented order.

use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};

use crate::Extensions;

/// An attribute value to write.
pub(crate) enum Field {
    /// A string.
    Str(String),
    /// A number.
    Number(u64),
    /// An object whose entries are written in this order.
    Object(Vec<(&'static str, Field)>),
    /// An object with owned keys (`extensions` from a map), written in key order.
    Map(Vec<(String, String)>),
}

impl Field {
    /// `extensions` as an object of strings.
    pub(crate) fn extensions(extensions: &Extensions) -> Field {
        Field::Map(
            extensions
                .iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
        )
    }
}

impl From<&str> for Field {
    fn from(s: &str) -> Field {
        Field::Str(s.to_owned())
    }
}

impl From<u64> for Field {
    fn from(n: u64) -> Field {
        Field::Number(n)
    }
}

impl From<u32> for Field {
    fn from(n: u32) -> Field {
        Field::Number(u64::from(n))
    }
}

impl Serialize for Field {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Field::Str(s) => serializer.serialize_str(s),
            Field::Number(n) => serializer.serialize_u64(*n),
            Field::Object(entries) => serialize_entries(entries, serializer),
            Field::Map(entries) => {
                let mut map = serializer.serialize_map(Some(entries.len()))?;
                for (k, v) in entries {
                    map.serialize_entry(k, v)?;
                }
                map.end()
            }
        }
    }
}

/// Serializes entries as a JSON object in their order.
pub(crate) fn serialize_entries<S: Serializer>(
    entries: &[(&'static str, Field)],
    serializer: S,
) -> Result<S::Ok, S::Error> {
    let mut map = serializer.serialize_map(Some(entries.len()))?;
    for (k, v) in entries {
        map.serialize_entry(k, v)?;
    }
    map.end()
}

struct Entries<'a>(&'a [(&'static str, Field)]);

impl Serialize for Entries<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serialize_entries(self.0, serializer)
    }
}

/// The entries as one line of JSON.
pub(crate) fn entries_to_json(entries: &[(&'static str, Field)]) -> String {
    // Writing strings and integers into a String cannot fail: serde_json fails only on
    // non-string map keys, I/O errors and custom Serialize errors, none of which occur here.
    serde_json::to_string(&Entries(entries)).unwrap_or_default()
}
