//! Times as the report shows them: UTC with milliseconds, offsets from the start
//! (`+00:02.314`), and spans for people (`2.314 s`, `1 h 05 min`).

use chrono::{DateTime, SecondsFormat, Utc};

/// A stored RFC 3339 time, `None` when it does not parse.
pub(super) fn parse(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// RFC 3339 UTC with milliseconds, as the audit stores times.
pub(super) fn utc(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// A time from outside (an alert's `startsAt`, with nanoseconds or an offset) as the report
/// shows times: UTC with milliseconds; as it was when it does not parse.
pub(super) fn normal(s: &str) -> String {
    parse(s).map_or_else(|| s.to_owned(), utc)
}

/// `t` relative to `base`: `+MM:SS.mmm`, `+H:MM:SS.mmm` past an hour, `-` before `base`.
pub(super) fn offset(base: DateTime<Utc>, t: DateTime<Utc>) -> String {
    let ms = (t - base).num_milliseconds();
    let sign = if ms < 0 { '-' } else { '+' };
    let ms = ms.unsigned_abs();
    let (h, m, s, frac) = (ms / 3_600_000, ms / 60_000 % 60, ms / 1000 % 60, ms % 1000);
    if h > 0 {
        format!("{sign}{h}:{m:02}:{s:02}.{frac:03}")
    } else {
        format!("{sign}{m:02}:{s:02}.{frac:03}")
    }
}

/// The offset of a stored time from `base`, empty when it does not parse.
pub(super) fn offset_of(base: DateTime<Utc>, s: &str) -> String {
    parse(s).map(|t| offset(base, t)).unwrap_or_default()
}

/// A span for people: `4 ms`, `2.314 s`, `3 min 05 s`, `1 h 05 min`, `2 d 3 h`.
pub(super) fn span(ms: i64) -> String {
    let neg = if ms < 0 { "-" } else { "" };
    let ms = ms.unsigned_abs();
    let s = ms / 1000;
    let text = match ms {
        0..1000 => format!("{ms} ms"),
        1000..60_000 => format!("{}.{:03} s", s, ms % 1000),
        60_000..3_600_000 => format!("{} min {:02} s", s / 60, s % 60),
        3_600_000..86_400_000 => format!("{} h {:02} min", s / 3600, s / 60 % 60),
        _ => format!("{} d {} h", s / 86_400, s / 3600 % 24),
    };
    format!("{neg}{text}")
}

/// The span between two times.
pub(super) fn between(a: DateTime<Utc>, b: DateTime<Utc>) -> String {
    span((b - a).num_milliseconds())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        parse(s).unwrap()
    }

    #[test]
    fn offsets_count_from_the_start_both_ways() {
        let base = t("2030-01-01T00:00:00.000Z");
        assert_eq!(offset(base, t("2030-01-01T00:00:02.314Z")), "+00:02.314");
        assert_eq!(offset(base, t("2030-01-01T00:01:00.000Z")), "+01:00.000");
        assert_eq!(offset(base, t("2030-01-01T01:02:03.004Z")), "+1:02:03.004");
        assert_eq!(offset(base, t("2029-12-31T23:59:55.000Z")), "-00:05.000");
        assert_eq!(offset_of(base, "not a time"), "");
        assert_eq!(
            normal("2030-01-01T02:00:00.123456789+02:00"),
            "2030-01-01T00:00:00.123Z"
        );
    }

    #[test]
    fn spans_pick_a_unit_a_person_reads() {
        assert_eq!(span(4), "4 ms");
        assert_eq!(span(2314), "2.314 s");
        assert_eq!(span(185_000), "3 min 05 s");
        assert_eq!(span(3_900_000), "1 h 05 min");
        assert_eq!(span(97_200_000), "1 d 3 h");
        assert_eq!(span(-1500), "-1.500 s");
    }
}
