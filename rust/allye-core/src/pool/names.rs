//! Names of pool segments, beside payload segments in the shared-memory directory.
//!
//! A payload segment is `adc_` + 24 hex digits, the first [`TAG_LEN`] naming its store
//! (see `crate::gc::orphans`). A pool segment is `adc_` + the same tag + `p` + hex digits
//! to 30 characters: never a payload name (`p` is no hex digit), so no reader, 0.1.2's
//! included, ever looks one up, while `adc cleanup` still finds it by its store's tag.

use crate::sys::shm::{SEGMENT_PREFIX, TAG_LEN};
/// The character after the tag that marks a pool segment.
pub const POOL_MARK: char = 'p';
/// Length of a pool segment's name (within macOS's 31-character limit, like every name).
pub const POOL_NAME_LEN: usize = 30;

fn is_lower_hex(s: &str) -> bool {
    s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// A fresh pool segment name carrying `tag` (random hex digits stand in for a missing or
/// malformed tag: such a segment is freed by gc's lock rule, never by a store's tag).
pub fn pool_name(tag: Option<&str>) -> String {
    let random = crate::sys::ids::new_v4().simple().to_string() + &crate::sys::ids::new_v4().simple().to_string();
    let tag = match tag {
        Some(t) if t.len() == TAG_LEN && is_lower_hex(t) => t.to_string(),
        _ => random[32..32 + TAG_LEN].to_string(),
    };
    let rest = POOL_NAME_LEN - SEGMENT_PREFIX.len() - TAG_LEN - 1;
    format!("{SEGMENT_PREFIX}{tag}{POOL_MARK}{}", &random[..rest])
}

/// The store tag of a pool segment name; `None` when `name` is not one.
pub fn pool_tag(name: &str) -> Option<&str> {
    let rest = name.strip_prefix(SEGMENT_PREFIX)?;
    if name.len() != POOL_NAME_LEN || rest.as_bytes().get(TAG_LEN) != Some(&(POOL_MARK as u8)) {
        return None;
    }
    let (tag, tail) = (&rest[..TAG_LEN], &rest[TAG_LEN + 1..]);
    (is_lower_hex(tag) && is_lower_hex(tail)).then_some(tag)
}

/// The tag a payload segment name carries (its first [`TAG_LEN`] hex digits; random
/// digits for an untagged name, which only ever names a pool segment then).
pub fn payload_tag(name: &str) -> Option<&str> {
    let hex = name.strip_prefix(SEGMENT_PREFIX)?;
    (hex.len() == 24 && is_lower_hex(hex)).then(|| &hex[..TAG_LEN])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pool_names_carry_the_tag_and_are_never_payload_names() {
        let n = pool_name(Some("0123456789"));
        assert_eq!(n.len(), POOL_NAME_LEN);
        assert!(n.starts_with("adc_0123456789p"));
        assert_eq!(pool_tag(&n), Some("0123456789"));
        assert_eq!(payload_tag(&n), None, "a pool name is no payload name");
        crate::sys::shm::check_name(&n).unwrap();
        let untagged = pool_name(None);
        assert!(pool_tag(&untagged).is_some());
        assert_ne!(pool_name(None), untagged);
        let bad_tag = pool_name(Some("XYZ"));
        assert!(pool_tag(&bad_tag).is_some());
        assert_eq!(pool_tag("adc_0123456789abcdef01234567"), None);
        assert_eq!(pool_tag("adc_store_0123456789"), None);
        assert_eq!(pool_tag("psm_0123456789p0123456789abcde"), None);
        assert_eq!(payload_tag("adc_0123456789abcdef01234567"), Some("0123456789"));
    }
}
