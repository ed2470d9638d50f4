//! Parsers for option values in Genesys' own syntax, usable alone.
//!
//! Lists are comma-separated, forgiving about spaces around items and about one trailing
//! `.` after the last item (the seed's own `aggregated-states` example ends with one), and
//! strict about everything else: an empty item, an unknown token or a bad number is an
//! error that gives the byte offset of the offending item within the value.

use std::fmt;

use presence_model::{AggregatedStateId, AggregatedStates, AvailabilityRange, StateIndex};

use crate::ConfigError;

/// An option value that does not parse, with the byte offset of the offending item within
/// the value.
#[derive(Debug)]
pub struct OptionValueError {
    /// Byte offset of the offending item in the value.
    pub offset: usize,
    /// What is wrong.
    pub error: ConfigError,
}

impl fmt::Display for OptionValueError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.error.fmt(f)
    }
}

impl std::error::Error for OptionValueError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.error)
    }
}

fn at(offset: usize, error: impl Into<ConfigError>) -> OptionValueError {
    OptionValueError {
        offset,
        error: error.into(),
    }
}

/// A Genesys boolean: `true`/`false`, `yes`/`no`, `1`/`0`, in any case, spaces around
/// allowed.
///
/// ```
/// use presence_config::options::parse_bool;
/// assert_eq!(parse_bool(" Yes ").unwrap(), true);
/// assert_eq!(parse_bool("0").unwrap(), false);
/// assert!(parse_bool("maybe").is_err());
/// ```
pub fn parse_bool(value: &str) -> Result<bool, ConfigError> {
    let v = value.trim();
    if ["true", "yes", "1"]
        .iter()
        .any(|t| t.eq_ignore_ascii_case(v))
    {
        Ok(true)
    } else if ["false", "no", "0"]
        .iter()
        .any(|t| t.eq_ignore_ascii_case(v))
    {
        Ok(false)
    } else {
        Err(ConfigError::NotABoolean {
            token: value.to_owned(),
        })
    }
}

const RANGES_SYNTAX: &str = "a comma-separated list of `N` or `N-M` with integers 0..=18000, N <= M (e.g. `3000-5999, 9000`)";
const STATES_SYNTAX: &str =
    "a comma-separated list of `K=ID` or `K:ID` with K in 1..=15 (e.g. `1=IDLE_OUT, 2=IDLE_READY`)";

/// Splits a list into trimmed items with their byte offsets: commas separate, spaces
/// around items are dropped, one `.` after the last item is dropped. Empty items are errors.
fn items<'v>(
    value: &'v str,
    expected: &'static str,
) -> Result<Vec<(usize, &'v str)>, OptionValueError> {
    let trimmed_end = value.trim_end();
    let body = trimmed_end.strip_suffix('.').unwrap_or(trimmed_end);
    if body.trim().is_empty() {
        return Err(at(
            0,
            ConfigError::BadList {
                what: "the list is empty".to_owned(),
                expected,
            },
        ));
    }
    let mut out = Vec::new();
    let mut start = 0;
    for part in body.split(',') {
        let lead = part.len() - part.trim_start().len();
        let item = part.trim();
        if item.is_empty() {
            let what = match out.last() {
                Some((_, previous)) => format!("empty item after `{previous}`"),
                None => "empty item at the start".to_owned(),
            };
            return Err(at(start, ConfigError::BadList { what, expected }));
        }
        out.push((start + lead, item));
        start += part.len() + 1;
    }
    Ok(out)
}

/// `presence-availability-range`: `N` or `N-M` items, inclusive, `0..=18000`; ranges may
/// overlap; a reversed range is an error.
///
/// ```
/// use presence_config::options::parse_availability_ranges;
/// let ranges = parse_availability_ranges("3000-4499, 4500 - 5999, 9000.").unwrap();
/// assert_eq!(ranges.len(), 3);
/// let err = parse_availability_ranges("3000-4499, 6000-3000").unwrap_err();
/// assert_eq!(err.offset, 11);
/// ```
pub fn parse_availability_ranges(value: &str) -> Result<Vec<AvailabilityRange>, OptionValueError> {
    items(value, RANGES_SYNTAX)?
        .into_iter()
        .map(|(offset, item)| item.parse::<AvailabilityRange>().map_err(|e| at(offset, e)))
        .collect()
}

/// `aggregated-states`: `K=ID` or `K:ID` items, K in `1..=15`, each K at most once.
///
/// ```
/// use presence_config::options::parse_aggregated_states;
/// use presence_model::StateIndex;
/// // The seed's own line, verbatim: odd spaces and a trailing `.`.
/// let seed = "1=IDLE_OUT, 2=IDLE_READY, 3=IDLE_NOTREADY, 4=IDLE_ACW, 5=IDLE_AWAY, 6=INCALL, 7= INCALL, 8=INCALL, 9=INCALL,10=INCALL,11=OOS, 12=OOS, 13=OOS, 14=OOS, 15=OOS.";
/// let table = parse_aggregated_states(seed).unwrap();
/// assert_eq!(table.get(StateIndex::new(7).unwrap()).unwrap().as_str(), "INCALL");
/// assert_eq!(table.get(StateIndex::new(15).unwrap()).unwrap().as_str(), "OOS");
/// ```
pub fn parse_aggregated_states(value: &str) -> Result<AggregatedStates, OptionValueError> {
    let mut table = AggregatedStates::default();
    for (offset, item) in items(value, STATES_SYNTAX)? {
        let Some(split) = item.find(['=', ':']) else {
            return Err(at(
                offset,
                ConfigError::BadList {
                    what: format!("`{item}` has no `=`"),
                    expected: STATES_SYNTAX,
                },
            ));
        };
        let (key, id) = (&item[..split], &item[split + 1..]);
        let index: StateIndex = key.parse().map_err(|e| at(offset, e))?;
        let id_offset = offset + split + 1 + (id.len() - id.trim_start().len());
        let id = AggregatedStateId::new(id.trim()).map_err(|e| at(id_offset, e))?;
        table.set(index, id).map_err(|e| at(offset, e))?;
    }
    Ok(table)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn seed_aggregated_states_line() {
        let seed = "1=IDLE_OUT, 2=IDLE_READY, 3=IDLE_NOTREADY, 4=IDLE_ACW, 5=IDLE_AWAY, 6=INCALL, 7= INCALL, 8=INCALL, 9=INCALL,10=INCALL,11=OOS, 12=OOS, 13=OOS, 14=OOS, 15=OOS.";
        let table = parse_aggregated_states(seed).unwrap();
        let expected = [
            "IDLE_OUT",
            "IDLE_READY",
            "IDLE_NOTREADY",
            "IDLE_ACW",
            "IDLE_AWAY",
            "INCALL",
            "INCALL",
            "INCALL",
            "INCALL",
            "INCALL",
            "OOS",
            "OOS",
            "OOS",
            "OOS",
            "OOS",
        ];
        for ((index, id), want) in table.iter().zip(expected) {
            assert_eq!(id.map(|i| i.as_str()), Some(want), "index {index}");
        }
        // The `:` form and missing indexes.
        let table = parse_aggregated_states(" 1 : A ,3:B").unwrap();
        assert_eq!(table.missing().count(), 13);
    }

    #[test]
    fn aggregated_states_errors_name_the_token_and_offset() {
        for (value, offset, needle) in [
            ("0=A", 0, "`0`"),
            ("1=A, 16=B", 5, "`16`"),
            ("1=A, 1=B", 5, "index 1"),
            ("1=A,,2=B", 4, "empty item after `1=A`"),
            ("1=A, x=B", 5, "`x`"),
            ("1=A, 2=", 7, "aggregated state ID ``"),
            ("1=A, 2=B C", 7, "`B C`"),
            ("1=A, 2 B", 5, "`2 B` has no `=`"),
            ("", 0, "empty"),
            ("  .", 0, "empty"),
        ] {
            let err = parse_aggregated_states(value).unwrap_err();
            assert_eq!(err.offset, offset, "{value}: {err}");
            assert!(err.to_string().contains(needle), "{value}: {err}");
        }
    }

    #[test]
    fn ranges() {
        let r = parse_availability_ranges("3000-5999").unwrap();
        assert_eq!(r[0].to_string(), "3000-5999");
        assert_eq!(
            parse_availability_ranges(" 3000 - 4499 ,9000 ")
                .unwrap()
                .len(),
            2
        );
        for (value, offset, needle) in [
            ("6000-3000", 0, "6000-3000"),
            ("abc", 0, "`abc`"),
            ("19000", 0, "19000"),
            ("3000-4499, -1", 11, "``"),
            ("3000-4499,", 10, "empty item"),
            ("1-2-3", 0, "`2-3`"),
        ] {
            let err = parse_availability_ranges(value).unwrap_err();
            assert_eq!(err.offset, offset, "{value}: {err}");
            assert!(err.to_string().contains(needle), "{value}: {err}");
        }
    }

    #[test]
    fn booleans() {
        for t in ["true", "TRUE", "Yes", "1", " true "] {
            assert!(parse_bool(t).unwrap());
        }
        for f in ["false", "No", "0", "FALSE"] {
            assert!(!parse_bool(f).unwrap());
        }
        let err = parse_bool("treu").unwrap_err().to_string();
        assert!(
            err.contains("`treu`") && err.contains("true/false"),
            "{err}"
        );
    }

    proptest! {
        #[test]
        fn never_panic_and_offsets_stay_in_bounds(value in "\\PC{0,80}") {
            for err in [
                parse_availability_ranges(&value).err(),
                parse_aggregated_states(&value).err(),
            ].into_iter().flatten() {
                prop_assert!(err.offset <= value.len());
                prop_assert!(value.is_char_boundary(err.offset));
            }
            let _ = parse_bool(&value);
        }

        #[test]
        fn written_tables_read_back(ids in proptest::collection::vec(proptest::option::of("[A-Z_]{1,8}"), 15), colon in any::<bool>(), dot in any::<bool>()) {
            let sep = if colon { ":" } else { "=" };
            let mut text = ids.iter().enumerate().filter_map(|(i, id)| id.as_ref().map(|id| format!("{} {sep} {id}", i + 1))).collect::<Vec<_>>().join(" ,");
            if text.is_empty() { return Ok(()); }
            if dot { text.push('.'); }
            let table = parse_aggregated_states(&text).unwrap();
            for ((_, got), want) in table.iter().zip(&ids) {
                prop_assert_eq!(got.map(|g| g.as_str().to_owned()), want.clone());
            }
        }
    }
}
