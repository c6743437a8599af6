//! A stable hash of a signature, computed at expansion time (FNV-1a, 64 bit): the same source
//! gives the same hash in every build, so two binaries can tell whether they agree.

/// FNV-1a of the parts, each followed by a separator.
pub(crate) fn signature_hash<'a>(parts: impl IntoIterator<Item = &'a str>) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for b in part.bytes().chain([0xff]) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    h
}
