//! Dates as text (RFC 3339 and Entra's timestamp form) and ISO 8601 durations.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::GraphSimError;

/// Year, month, day, hour, minute, second, millisecond of a time (UTC).
fn civil(time: SystemTime) -> (i64, u32, u32, u64, u64, u64, u32) {
    let since = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let days = i64::try_from(secs / 86_400).unwrap_or(0);
    let rem = secs % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = u32::try_from(doy - (153 * mp + 2) / 5 + 1).unwrap_or(1);
    let month = u32::try_from(if mp < 10 { mp + 3 } else { mp - 9 }).unwrap_or(1);
    let year = yoe + era * 400 + i64::from(month <= 2);
    (
        year,
        month,
        day,
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        since.subsec_millis(),
    )
}

/// `2025-01-01T09:30:00Z`.
pub(crate) fn rfc3339(time: SystemTime) -> String {
    let (y, mo, d, h, mi, s, _) = civil(time);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
}

/// `2025-01-01T09:30:00.125Z`.
pub(crate) fn rfc3339_millis(time: SystemTime) -> String {
    let (y, mo, d, h, mi, s, ms) = civil(time);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{ms:03}Z")
}

/// Entra's form: `2025-01-01 09:30:00Z`.
pub(crate) fn entra_timestamp(time: SystemTime) -> String {
    let (y, mo, d, h, mi, s, _) = civil(time);
    format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}Z")
}

/// Parses an ISO 8601 duration of days and time: `PT1H`, `PT5M`, `PT30S`, `PT1H30M`,
/// `PT0.5S`, `P1D`, `P1DT12H`, `P2W`. Years and months (`P1Y`, `P1M`) have no fixed
/// length and are refused, as are negative durations, empty ones (`P`, `PT`), components
/// out of order or repeated, and fractions anywhere but in the seconds. Never panics.
///
/// ```
/// use std::time::Duration;
/// use presence_graph_sim::parse_iso8601_duration;
///
/// assert_eq!(parse_iso8601_duration("PT1H30M")?, Duration::from_secs(5400));
/// assert_eq!(parse_iso8601_duration("P1D")?, Duration::from_secs(86_400));
/// assert!(parse_iso8601_duration("PT").is_err());
/// # Ok::<(), presence_graph_sim::GraphSimError>(())
/// ```
///
/// # Errors
/// [`GraphSimError::InvalidDuration`] for anything else.
pub fn parse_iso8601_duration(text: &str) -> Result<Duration, GraphSimError> {
    parse(text).ok_or_else(|| GraphSimError::InvalidDuration(shorten(text)))
}

fn shorten(text: &str) -> String {
    text.chars().take(64).collect()
}

fn parse(text: &str) -> Option<Duration> {
    let rest = text.strip_prefix('P')?;
    let (date, time) = match rest.split_once('T') {
        Some((date, time)) => {
            if time.is_empty() {
                return None;
            }
            (date, Some(time))
        }
        None => (rest, None),
    };
    if date.is_empty() && time.is_none() {
        return None;
    }
    let mut total = Duration::ZERO;
    // Date part: weeks and days (in that order).
    let mut units: &[(u8, u64)] = &[(b'W', 604_800), (b'D', 86_400)];
    let mut chars = date;
    while !chars.is_empty() {
        let (number, unit, after) = component(chars)?;
        let position = units.iter().position(|(u, _)| *u == unit)?;
        let (_, seconds) = units.get(position)?;
        if number.1.is_some() {
            return None; // fractions only in seconds
        }
        total = total.checked_add(Duration::from_secs(number.0.checked_mul(*seconds)?))?;
        units = units.get(position + 1..)?;
        chars = after;
    }
    if let Some(time) = time {
        let mut units: &[(u8, u64)] = &[(b'H', 3600), (b'M', 60), (b'S', 1)];
        let mut chars = time;
        while !chars.is_empty() {
            let (number, unit, after) = component(chars)?;
            let position = units.iter().position(|(u, _)| *u == unit)?;
            let (_, seconds) = units.get(position)?;
            let whole = Duration::from_secs(number.0.checked_mul(*seconds)?);
            total = total.checked_add(whole)?;
            if let Some(nanos) = number.1 {
                if unit != b'S' || !after.is_empty() {
                    return None;
                }
                total = total.checked_add(Duration::from_nanos(nanos))?;
            }
            units = units.get(position + 1..)?;
            chars = after;
        }
    }
    Some(total)
}

/// One `<digits>[.<digits>]<unit>`: ((whole, nanoseconds of the fraction), unit, rest).
#[allow(clippy::type_complexity)]
fn component(text: &str) -> Option<((u64, Option<u64>), u8, &str)> {
    let bytes = text.as_bytes();
    let digits = bytes.iter().take_while(|b| b.is_ascii_digit()).count();
    if digits == 0 || digits > 12 {
        return None;
    }
    let whole: u64 = text.get(..digits)?.parse().ok()?;
    let mut at = digits;
    let mut fraction = None;
    if matches!(bytes.get(at), Some(b'.' | b',')) {
        let start = at + 1;
        let count = bytes
            .get(start..)?
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .count();
        if count == 0 || count > 9 {
            return None;
        }
        let digits = text.get(start..start + count)?;
        let scale = 10u64.checked_pow(u32::try_from(9 - count).ok()?)?;
        fraction = Some(digits.parse::<u64>().ok()?.checked_mul(scale)?);
        at = start + count;
    }
    let unit = *bytes.get(at)?;
    Some(((whole, fraction), unit, text.get(at + 1..)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn secs(text: &str) -> Option<u64> {
        parse_iso8601_duration(text).ok().map(|d| d.as_secs())
    }

    #[test]
    fn durations() {
        assert_eq!(secs("PT5M"), Some(300));
        assert_eq!(secs("PT1H"), Some(3600));
        assert_eq!(secs("PT4H"), Some(14_400));
        assert_eq!(secs("PT30S"), Some(30));
        assert_eq!(secs("PT1H30M"), Some(5400));
        assert_eq!(secs("PT1H30M15S"), Some(5415));
        assert_eq!(secs("PT90M"), Some(5400));
        assert_eq!(secs("P1D"), Some(86_400));
        assert_eq!(secs("P7D"), Some(604_800));
        assert_eq!(secs("P1W"), Some(604_800));
        assert_eq!(secs("P1DT1H"), Some(90_000));
        assert_eq!(secs("PT0S"), Some(0));
        assert_eq!(
            parse_iso8601_duration("PT1.5S").unwrap(),
            Duration::from_millis(1500)
        );
        for bad in [
            "",
            "P",
            "PT",
            "T1H",
            "1H",
            "PT1",
            "PTH",
            "PT1M1H",
            "PT1H1H",
            "P1Y",
            "P1M",
            "-PT1H",
            "PT-1H",
            "pt1h",
            "PT1.5H",
            "PT1.5S2",
            "P1.5D",
            "PT1X",
            "PT 1H",
            "PT1H ",
            "P1DT",
            "PT99999999999999H",
            "PT1.0000000001S",
        ] {
            assert!(parse_iso8601_duration(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn dates() {
        let t = UNIX_EPOCH + Duration::from_millis(1_735_723_845_125); // 2025-01-01 09:30:45.125
        assert_eq!(rfc3339(t), "2025-01-01T09:30:45Z");
        assert_eq!(rfc3339_millis(t), "2025-01-01T09:30:45.125Z");
        assert_eq!(entra_timestamp(t), "2025-01-01 09:30:45Z");
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400); // 2000-02-29
        assert_eq!(rfc3339(leap), "2000-02-29T00:00:00Z");
    }

    proptest! {
        #[test]
        fn the_duration_parser_never_panics(text in any::<String>()) {
            let _ = parse_iso8601_duration(&text);
        }

        #[test]
        fn the_duration_parser_never_panics_on_near_misses(text in "P[0-9WDTHMS.,]{0,24}") {
            let _ = parse_iso8601_duration(&text);
        }

        #[test]
        fn hours_minutes_seconds_add_up(h in 0u64..1000, m in 0u64..1000, s in 0u64..1000) {
            let text = format!("PT{h}H{m}M{s}S");
            prop_assert_eq!(secs(&text), Some(h * 3600 + m * 60 + s));
        }
    }
}
