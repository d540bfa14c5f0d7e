//! The engine's RFC 3339 time stamps as Unix seconds.

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// Unix seconds of an RFC 3339 time as engines write it
/// (`2026-11-24T15:38:47.920909638Z`, or with an offset); `None` for the
/// engine's zero time (year 1, "never") and for anything that does not parse.
pub fn parse_rfc3339(s: &str) -> Option<f64> {
    let t = OffsetDateTime::parse(s, &Rfc3339).ok()?;
    if t.year() <= 1 {
        return None;
    }
    Some(t.unix_timestamp() as f64 + f64::from(t.nanosecond()) / 1e9)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_as_engines_write_it() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(0.0));
        assert_eq!(parse_rfc3339("2000-03-01T00:00:00Z"), Some(951_868_800.0));
        let t = parse_rfc3339("2026-11-24T15:38:47.920909638Z").unwrap();
        assert!((t - 1_795_534_727.920_909_6).abs() < 1e-3, "{t}");
        assert_eq!(
            parse_rfc3339("2026-11-24T16:38:47+01:00"),
            parse_rfc3339("2026-11-24T15:38:47Z")
        );
        assert_eq!(parse_rfc3339("0001-01-01T00:00:00Z"), None);
        assert_eq!(parse_rfc3339("garbage"), None);
        assert_eq!(parse_rfc3339("2026-13-01T00:00:00Z"), None);
    }

    #[test]
    fn non_ascii_time_zone_is_rejected_not_a_panic() {
        // Inputs that once made a hand-written parser panic (fuzz/artifacts-found/).
        for zone in ["+aé12", "+0é00", "-09é9", "+1€&", "-0😀"] {
            assert_eq!(
                parse_rfc3339(&format!("2026-11-24T15:38:47{zone}")),
                None,
                "{zone}"
            );
        }
    }
}
