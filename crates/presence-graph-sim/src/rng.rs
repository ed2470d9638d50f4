//! The simulator's deterministic randomness: a SplitMix64 generator for token strings and
//! request GUIDs, and name-derived GUIDs for users and default registrations.

/// SplitMix64 (Steele, Lea, Flood 2014): tiny, fast, and good enough for identifiers.
#[derive(Clone, Debug)]
pub(crate) struct SplitMix64(u64);

impl SplitMix64 {
    pub(crate) fn new(seed: u64) -> SplitMix64 {
        SplitMix64(seed)
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A random (version 4 shaped) GUID, lower case.
    pub(crate) fn guid(&mut self) -> String {
        let hi = self.next_u64();
        let lo = self.next_u64();
        format_guid(hi, lo)
    }

    /// An opaque access token: `sim.` and 64 hex digits.
    pub(crate) fn token(&mut self) -> String {
        let mut token = String::with_capacity(68);
        token.push_str("sim.");
        for _ in 0..4 {
            token.push_str(&format!("{:016x}", self.next_u64()));
        }
        token
    }
}

fn format_guid(hi: u64, lo: u64) -> String {
    // Version 4 (random) in the third group, RFC 4122 variant in the fourth.
    let hi = (hi & !0xF000) | 0x4000;
    let lo = (lo & 0x3FFF_FFFF_FFFF_FFFF) | 0x8000_0000_0000_0000;
    format!(
        "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        hi >> 32,
        (hi >> 16) & 0xFFFF,
        hi & 0xFFFF,
        lo >> 48,
        lo & 0xFFFF_FFFF_FFFF
    )
}

/// A GUID derived from a name (case-insensitive): the same name always gives the same
/// GUID, whatever the seed and whatever else the simulator holds.
pub(crate) fn name_guid(name: &str) -> String {
    // FNV-1a over the lower-cased name seeds a generator.
    let mut hash: u64 = 0xCBF2_9CE4_8422_2325;
    for byte in name.bytes().map(|b| b.to_ascii_lowercase()) {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01B3);
    }
    SplitMix64::new(hash).guid()
}

/// Whether `text` is a GUID in its usual 8-4-4-4-12 hex form.
pub(crate) fn is_guid(text: &str) -> bool {
    let groups: Vec<&str> = text.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, n)| g.len() == n && g.bytes().all(|b| b.is_ascii_hexdigit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guids_are_deterministic_and_well_formed() {
        let mut a = SplitMix64::new(7);
        let mut b = SplitMix64::new(7);
        let guid = a.guid();
        assert_eq!(guid, b.guid());
        assert!(is_guid(&guid), "{guid}");
        assert_eq!(guid.as_bytes()[14], b'4');
        assert_ne!(a.guid(), guid);
        assert_eq!(
            name_guid("Agent1@Contoso.com"),
            name_guid("agent1@contoso.com")
        );
        assert_ne!(
            name_guid("agent1@contoso.com"),
            name_guid("agent2@contoso.com")
        );
        assert!(is_guid(&name_guid("x")));
        assert!(!is_guid("not-a-guid"));
        assert_eq!(a.token().len(), 68);
    }
}
