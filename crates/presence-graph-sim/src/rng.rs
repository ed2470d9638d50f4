//! The simulator's deterministic randomness: the workspace's SplitMix64 for token strings
//! and request GUIDs, and name-derived GUIDs for users and default registrations.

pub(crate) use presence_model::random::SplitMix64;

/// An opaque access token: `sim.` and 64 hex digits.
pub(crate) fn token(rng: &mut SplitMix64) -> String {
    format!("sim.{}", rng.hex(64))
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
        assert_eq!(token(&mut a).len(), 68);
    }
}
