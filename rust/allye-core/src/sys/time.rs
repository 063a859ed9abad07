//! Timestamps as the protocol writes them: local time, `%Y-%m-%dT%H:%M:%S%z`.

use chrono::{DateTime, Duration, FixedOffset, Local};

use crate::protocol::TIMESTAMP_FORMAT;

/// Now, in local time, formatted as the protocol wants.
pub fn now_iso() -> String {
    Local::now().format(TIMESTAMP_FORMAT).to_string()
}

/// `now + ttl_sec`, formatted; `None` without a TTL.
pub fn expires_at_iso(ttl_sec: Option<i64>) -> Option<String> {
    ttl_sec.map(|ttl| (Local::now() + Duration::seconds(ttl)).format(TIMESTAMP_FORMAT).to_string())
}

/// Parses a protocol timestamp; `None` when it does not parse.
pub fn parse_iso(text: &str) -> Option<DateTime<FixedOffset>> {
    DateTime::parse_from_str(text, TIMESTAMP_FORMAT).ok()
}

/// True when `expires_at` is set, parses, and lies in the past.
pub fn is_expired(expires_at: Option<&str>) -> bool {
    match expires_at.and_then(parse_iso) {
        Some(t) => t <= Local::now(),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_like_python_strftime() {
        let s = now_iso();
        // 2025-12-18T12:34:56+0900: 24 characters, sign then four digits.
        assert_eq!(s.len(), 24, "{s}");
        assert!(matches!(&s[19..20], "+" | "-"), "{s}");
        assert!(parse_iso(&s).is_some());
    }

    #[test]
    fn only_a_past_parseable_expiry_has_expired() {
        assert!(!is_expired(None));
        assert!(!is_expired(Some("garbage")));
        assert!(is_expired(Some("2000-01-01T00:00:00+0000")));
        assert!(!is_expired(expires_at_iso(Some(3600)).as_deref()));
        assert!(is_expired(expires_at_iso(Some(-1)).as_deref()));
    }
}
