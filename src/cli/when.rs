//! Times as people read them: local time (the zone `TZ` names, else the
//! system's), the date only when it is not today, and `--utc` for UTC.
//! Files keep RFC 3339 UTC; only the human output converts.

use jiff::{tz::TimeZone, Timestamp, ZonedDateTime as Zoned};
use std::sync::atomic::{AtomicBool, Ordering};

static UTC: AtomicBool = AtomicBool::new(false);

/// `--utc`: print times in UTC rather than local time.
pub fn set_utc(utc: bool) {
    UTC.store(utc, Ordering::Relaxed);
}

pub fn zone() -> TimeZone {
    if UTC.load(Ordering::Relaxed) {
        TimeZone::UTC
    } else {
        TimeZone::system()
    }
}

fn local(ts: &str) -> Option<(Zoned, Zoned)> {
    let t: Timestamp = ts.parse().ok()?;
    let tz = zone();
    Some((
        t.to_zoned_datetime(tz.clone()),
        Zoned::now().with_time_zone(tz),
    ))
}

/// `14:03:05` today, `2026-11-29 14:03:05` on another day; an unparsable
/// time is printed as it is.
pub fn stamp(ts: &str) -> String {
    match local(ts) {
        Some((t, now)) if t.date() == now.date() => t.strftime("%H:%M:%S").to_string(),
        Some((t, _)) => t.strftime("%Y-%m-%d %H:%M:%S").to_string(),
        None => ts.to_string(),
    }
}

/// [`stamp`] with milliseconds, for logs: `14:03:05.123`.
pub fn stamp_ms(ts: &str) -> String {
    match local(ts) {
        Some((t, now)) if t.date() == now.date() => t.strftime("%H:%M:%S%.3f").to_string(),
        Some((t, _)) => t.strftime("%Y-%m-%d %H:%M:%S%.3f").to_string(),
        None => ts.to_string(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn another_day_has_its_date_and_utc_is_utc() {
        set_utc(true);
        assert_eq!(stamp("2001-02-03T04:05:06.789Z"), "2001-02-03 04:05:06");
        assert_eq!(
            stamp_ms("2001-02-03T04:05:06.789Z"),
            "2001-02-03 04:05:06.789"
        );
        let now = Timestamp::now().to_string();
        assert_eq!(stamp(&now).len(), "04:05:06".len(), "{now}");
        assert_eq!(stamp("not a time"), "not a time");
    }
}
