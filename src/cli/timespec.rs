//! `--since` and `--until`: a time as a person types it, the way
//! `journalctl` takes it.
//!
//! - relative: `10m`, `2h 30m`, `90s` (that long ago; `10m ago` too);
//! - `now`, `today` (midnight), `yesterday` (midnight the day before);
//! - a local date and time: `2026-11-30`, `2026-11-30 14:05`,
//!   `2026-11-30T14:05:09`, or a time today: `14:05`;
//! - an RFC 3339 time with its offset: `2026-11-30T13:05:09Z`.
//!
//! Local means the zone `TZ` names (UTC with `--utc`), as times print.

use jiff::civil::{Date, DateTime, Time};
use jiff::Timestamp;

/// Parses a `--since`/`--until` value (a clap value parser).
pub fn parse(text: &str) -> Result<Timestamp, String> {
    let text = text.trim();
    let now = jiff::ZonedDateTime::now().with_time_zone(super::when::zone());
    let at_local = |dt: DateTime| {
        dt.to_zoned_datetime(super::when::zone())
            .map(|z| z.timestamp())
            .map_err(|e| format!("{text:?}: {e}"))
    };
    match text {
        "now" => return Ok(now.timestamp()),
        "today" => return at_local(now.date().to_datetime(Time::midnight())),
        "yesterday" => {
            let day = now.date().yesterday().map_err(|e| e.to_string())?;
            return at_local(day.to_datetime(Time::midnight()));
        }
        _ => {}
    }
    if let Ok(t) = text.parse::<Timestamp>() {
        return Ok(t);
    }
    if let Ok(dt) = text.parse::<DateTime>() {
        return at_local(dt);
    }
    if let Ok(d) = text.parse::<Date>() {
        return at_local(d.to_datetime(Time::midnight()));
    }
    if let Ok(t) = text.parse::<Time>() {
        return at_local(now.date().to_datetime(t));
    }
    let ago = text.strip_suffix("ago").unwrap_or(text).trim();
    if let Ok(d) = humantime::parse_duration(ago) {
        return now
            .timestamp()
            .checked_sub(d)
            .map_err(|e| format!("{text:?}: {e}"));
    }
    Err(format!(
        "{text:?} is not a time: use a duration ago (10m, 2h), now, today, yesterday, \
         a local date and time (2026-11-30 14:05, 14:05) or RFC 3339 (2026-11-30T13:05:09Z)"
    ))
}

/// Is the record's `ts` inside `[since, until]`? A record without a
/// readable `ts` is kept only when no bound is set.
pub fn within(ts: Option<&str>, since: Option<Timestamp>, until: Option<Timestamp>) -> bool {
    if since.is_none() && until.is_none() {
        return true;
    }
    let Some(t) = ts.and_then(|t| t.parse::<Timestamp>().ok()) else {
        return false;
    };
    since.is_none_or(|s| t >= s) && until.is_none_or(|u| t <= u)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn takes_what_people_type() {
        super::super::when::set_utc(true);
        let now = Timestamp::now();
        let ten = parse("10m").unwrap();
        let secs = now.as_second() - ten.as_second();
        assert!((599..=601).contains(&secs), "{secs}");
        // Parsed a moment later: a second may have ticked over in between.
        let ago = parse("10m ago").unwrap().as_second() - ten.as_second();
        assert!((0..=1).contains(&ago), "{ago}");
        assert_eq!(
            parse("2026-11-30 14:05").unwrap().to_string(),
            "2026-11-30T14:05:00Z"
        );
        assert_eq!(
            parse("2026-11-30").unwrap().to_string(),
            "2026-11-30T00:00:00Z"
        );
        assert_eq!(
            parse("2026-11-30T13:05:09+01:00").unwrap().to_string(),
            "2026-11-30T12:05:09Z"
        );
        assert!(parse("14:05").unwrap().to_string().ends_with("T14:05:00Z"));
        assert!(parse("today").unwrap() <= now);
        let err = parse("last tuesday").unwrap_err();
        assert!(err.contains("is not a time"), "{err}");
    }

    #[test]
    fn bounds() {
        let t = |s: &str| s.parse::<Timestamp>().unwrap();
        let (a, b) = (t("2026-01-01T00:00:00Z"), t("2026-01-02T00:00:00Z"));
        assert!(within(Some("2026-01-01T12:00:00.000Z"), Some(a), Some(b)));
        assert!(!within(Some("2025-12-31T23:59:59.999Z"), Some(a), None));
        assert!(!within(Some("2026-01-02T00:00:00.001Z"), None, Some(b)));
        assert!(within(None, None, None));
        assert!(!within(Some("garbage"), Some(a), None));
    }
}
