//! Skype for Business availability numbers, their classes and inclusive ranges.

use std::fmt;
use std::str::FromStr;

use crate::ModelError;

/// An SfB availability number, always within `0..=18000`.
///
/// Configuration values above 18000 are errors ([`Availability::new`]); values received from
/// the wire above 18000 (clients publish 18500 for "appear offline") are treated as 18000
/// ([`Availability::from_wire`]) **(decision)**: clients publish 18500 for "appear offline".
///
/// ```
/// use presence_model::{Availability, AvailabilityClass};
/// let a: Availability = "7001".parse()?;
/// assert_eq!(a.class(), AvailabilityClass::Busy);
/// assert_eq!(Availability::from_wire(18500), Availability::OFFLINE);
/// assert!("18001".parse::<Availability>().is_err());
/// # Ok::<(), presence_model::ModelError>(())
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Availability(u16);

impl Availability {
    /// The largest availability a configuration may name, and the value every larger wire
    /// value is clamped to.
    pub const MAX: u16 = 18000;
    /// 0: "the availability is not set".
    pub const NONE: Availability = Availability(0);
    /// 18000: Offline.
    pub const OFFLINE: Availability = Availability(Self::MAX);

    /// An availability from a configuration value: `0..=18000`, anything else is an error.
    pub const fn new(value: u32) -> Result<Self, ModelError> {
        if value <= Self::MAX as u32 {
            Ok(Availability(value as u16))
        } else {
            Err(ModelError::AvailabilityOutOfRange {
                value: value as u64,
            })
        }
    }

    /// An availability as received from a transport: values above 18000 count as 18000.
    pub const fn from_wire(value: u64) -> Self {
        if value > Self::MAX as u64 {
            Self::OFFLINE
        } else {
            Availability(value as u16)
        }
    }

    /// The number.
    pub const fn get(self) -> u16 {
        self.0
    }

    /// Whether this is 0, "not set".
    pub const fn is_none(self) -> bool {
        self.0 == 0
    }

    /// The SfB class this number belongs to.
    pub const fn class(self) -> AvailabilityClass {
        AvailabilityClass::of(self.0)
    }
}

impl fmt::Display for Availability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl FromStr for Availability {
    type Err = ModelError;

    /// Parses a decimal `0..=18000` (surrounding spaces allowed; no sign, no other text).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let value = parse_decimal(s.trim()).ok_or_else(|| ModelError::NotANumber {
            what: "availability",
            token: s.to_owned(),
            expected: "an integer 0..=18000",
        })?;
        if value > u64::from(Self::MAX) {
            return Err(ModelError::AvailabilityOutOfRange { value });
        }
        Ok(Availability(value as u16))
    }
}

impl From<Availability> for u16 {
    fn from(a: Availability) -> u16 {
        a.0
    }
}

/// Parses ASCII decimal digits (at most 19 of them) into a `u64`; `None` for anything else.
pub(crate) fn parse_decimal(s: &str) -> Option<u64> {
    if s.is_empty() || s.len() > 19 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// The availability classes of Skype for Business.
///
/// Values 1–2999 belong to [`AvailabilityClass::Online`], as in Lync's own table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AvailabilityClass {
    /// 0: not set.
    None,
    /// 1–4499: free.
    Online,
    /// 4500–5999: user online, device away.
    IdleOnline,
    /// 6000–7499: busy.
    Busy,
    /// 7500–8999: user busy, device away.
    IdleBusy,
    /// 9000–11999: do not disturb.
    DoNotDisturb,
    /// 12000–14999: temporarily unalertable.
    BeRightBack,
    /// 15000–17999: unalertable.
    Away,
    /// 18000 and above: unavailable.
    Offline,
}

impl AvailabilityClass {
    /// Every class, lowest numbers first.
    pub const ALL: [AvailabilityClass; 9] = [
        AvailabilityClass::None,
        AvailabilityClass::Online,
        AvailabilityClass::IdleOnline,
        AvailabilityClass::Busy,
        AvailabilityClass::IdleBusy,
        AvailabilityClass::DoNotDisturb,
        AvailabilityClass::BeRightBack,
        AvailabilityClass::Away,
        AvailabilityClass::Offline,
    ];

    /// The class of a (clamped) availability number.
    pub const fn of(value: u16) -> Self {
        match value {
            0 => AvailabilityClass::None,
            1..=4499 => AvailabilityClass::Online,
            4500..=5999 => AvailabilityClass::IdleOnline,
            6000..=7499 => AvailabilityClass::Busy,
            7500..=8999 => AvailabilityClass::IdleBusy,
            9000..=11999 => AvailabilityClass::DoNotDisturb,
            12000..=14999 => AvailabilityClass::BeRightBack,
            15000..=17999 => AvailabilityClass::Away,
            _ => AvailabilityClass::Offline,
        }
    }

    /// SfB's name of the class.
    pub const fn name(self) -> &'static str {
        match self {
            AvailabilityClass::None => "None",
            AvailabilityClass::Online => "Online",
            AvailabilityClass::IdleOnline => "IdleOnline",
            AvailabilityClass::Busy => "Busy",
            AvailabilityClass::IdleBusy => "IdleBusy",
            AvailabilityClass::DoNotDisturb => "DoNotDisturb",
            AvailabilityClass::BeRightBack => "BeRightBack",
            AvailabilityClass::Away => "Away",
            AvailabilityClass::Offline => "Offline",
        }
    }

    /// The numbers of the class within `0..=18000`, inclusive.
    pub const fn range(self) -> AvailabilityRange {
        let (start, end) = match self {
            AvailabilityClass::None => (0, 0),
            AvailabilityClass::Online => (1, 4499),
            AvailabilityClass::IdleOnline => (4500, 5999),
            AvailabilityClass::Busy => (6000, 7499),
            AvailabilityClass::IdleBusy => (7500, 8999),
            AvailabilityClass::DoNotDisturb => (9000, 11999),
            AvailabilityClass::BeRightBack => (12000, 14999),
            AvailabilityClass::Away => (15000, 17999),
            AvailabilityClass::Offline => (18000, 18000),
        };
        AvailabilityRange {
            start: Availability(start),
            end: Availability(end),
        }
    }
}

impl fmt::Display for AvailabilityClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An inclusive range of availability numbers, `start <= end`, as written in
/// `presence-availability-range` (`N` or `N-M`).
///
/// ```
/// use presence_model::{Availability, AvailabilityRange};
/// let r: AvailabilityRange = "3000-5999".parse()?;
/// assert!(r.contains(Availability::new(4500)?));
/// assert_eq!(r.to_string(), "3000-5999");
/// assert!("6000-3000".parse::<AvailabilityRange>().is_err());
/// # Ok::<(), presence_model::ModelError>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct AvailabilityRange {
    start: Availability,
    end: Availability,
}

impl AvailabilityRange {
    /// A range; `start > end` is an error.
    pub fn new(start: Availability, end: Availability) -> Result<Self, ModelError> {
        if start > end {
            return Err(ModelError::ReversedRange {
                start: start.get(),
                end: end.get(),
            });
        }
        Ok(AvailabilityRange { start, end })
    }

    /// The first number in the range.
    pub const fn start(self) -> Availability {
        self.start
    }

    /// The last number in the range.
    pub const fn end(self) -> Availability {
        self.end
    }

    /// Whether `a` lies within the range.
    pub fn contains(self, a: Availability) -> bool {
        self.start <= a && a <= self.end
    }
}

impl fmt::Display for AvailabilityRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.start == self.end {
            write!(f, "{}", self.start)
        } else {
            write!(f, "{}-{}", self.start, self.end)
        }
    }
}

impl FromStr for AvailabilityRange {
    type Err = ModelError;

    /// Parses `N` or `N-M` (spaces around the numbers allowed), both in `0..=18000`, `N <= M`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.split_once('-') {
            None => {
                let a = parse_bound(s)?;
                Ok(AvailabilityRange { start: a, end: a })
            }
            Some((start, end)) => AvailabilityRange::new(parse_bound(start)?, parse_bound(end)?),
        }
    }
}

fn parse_bound(s: &str) -> Result<Availability, ModelError> {
    s.parse::<Availability>().map_err(|e| match e {
        ModelError::NotANumber { token, .. } => ModelError::NotANumber {
            what: "availability range bound",
            token,
            expected: "`N` or `N-M` with integers 0..=18000",
        },
        other => other,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn classes_follow_the_spec_table() {
        let cases = [
            (0, AvailabilityClass::None),
            (1, AvailabilityClass::Online),
            (2999, AvailabilityClass::Online),
            (3000, AvailabilityClass::Online),
            (4499, AvailabilityClass::Online),
            (4500, AvailabilityClass::IdleOnline),
            (5999, AvailabilityClass::IdleOnline),
            (6000, AvailabilityClass::Busy),
            (7499, AvailabilityClass::Busy),
            (7500, AvailabilityClass::IdleBusy),
            (8999, AvailabilityClass::IdleBusy),
            (9000, AvailabilityClass::DoNotDisturb),
            (11999, AvailabilityClass::DoNotDisturb),
            (12000, AvailabilityClass::BeRightBack),
            (14999, AvailabilityClass::BeRightBack),
            (15000, AvailabilityClass::Away),
            (17999, AvailabilityClass::Away),
            (18000, AvailabilityClass::Offline),
        ];
        for (value, class) in cases {
            assert_eq!(AvailabilityClass::of(value), class, "{value}");
        }
        assert_eq!(
            Availability::from_wire(18500).class(),
            AvailabilityClass::Offline
        );
    }

    #[test]
    fn class_ranges_tile_the_whole_domain() {
        let mut next = 0u32;
        for class in AvailabilityClass::ALL {
            let r = class.range();
            assert_eq!(u32::from(r.start().get()), next, "{class}");
            next = u32::from(r.end().get()) + 1;
        }
        assert_eq!(next, 18001);
    }

    #[test]
    fn bad_availability_names_the_value() {
        for (input, needle) in [("-1", "`-1`"), ("18001", "18001"), ("x", "`x`"), ("", "``")] {
            let err = input.parse::<Availability>().unwrap_err().to_string();
            assert!(err.contains(needle), "{input}: {err}");
            assert!(err.contains("0..=18000"), "{input}: {err}");
        }
    }

    #[test]
    fn reversed_and_bad_ranges_are_errors() {
        let err = "6000-3000".parse::<AvailabilityRange>().unwrap_err();
        assert!(err.to_string().contains("6000-3000"), "{err}");
        assert!("abc".parse::<AvailabilityRange>().is_err());
        assert!("19000".parse::<AvailabilityRange>().is_err());
        assert!("1-2-3".parse::<AvailabilityRange>().is_err());
        assert!("-5".parse::<AvailabilityRange>().is_err());
        assert_eq!(
            " 3000 - 5999 ".parse::<AvailabilityRange>().unwrap(),
            "3000-5999".parse().unwrap()
        );
    }

    proptest! {
        #[test]
        fn wire_values_clamp(v in any::<u64>()) {
            let a = Availability::from_wire(v);
            prop_assert_eq!(u64::from(a.get()), v.min(18000));
        }

        #[test]
        fn range_display_round_trips(a in 0u32..=18000, b in 0u32..=18000) {
            let (lo, hi) = (a.min(b), a.max(b));
            let r = AvailabilityRange::new(Availability::new(lo).unwrap(), Availability::new(hi).unwrap()).unwrap();
            prop_assert_eq!(r.to_string().parse::<AvailabilityRange>().unwrap(), r);
        }

        #[test]
        fn parsing_never_panics(s in ".{0,40}") {
            let _ = s.parse::<Availability>();
            let _ = s.parse::<AvailabilityRange>();
        }
    }
}
