//! Short human durations and cut text for table cells: `AGE` columns
//! (`3m`), due dates (`in 2h 5m`). Tables themselves are
//! [`super::output::Table`]; absolute times are [`super::when`].

use society_core::time;

/// `text` cut to `max` characters, with an ellipsis when cut; one line.
pub fn truncate(text: &str, max: usize) -> String {
    let one_line: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if one_line.chars().count() <= max {
        return one_line;
    }
    let mut cut: String = one_line.chars().take(max.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

/// A coarse duration: `45s`, `12m`, `3h 5m`, `2d 4h`.
pub fn coarse(d: std::time::Duration) -> String {
    let s = d.as_secs();
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m", s / 60),
        3600..86400 => format!("{}h {}m", s / 3600, s % 3600 / 60),
        _ => format!("{}d {}h", s / 86400, s % 86400 / 3600),
    }
}

/// How long ago an RFC 3339 time was (`"3m"`), or `-` if unparsable.
pub fn age(ts: &str) -> String {
    time::parse_rfc3339(ts).map_or("-".into(), |t| coarse(time::age(t)))
}

/// An RFC 3339 time relative to now: `in 23h 59m` or `2h 3m ago`.
pub fn relative(ts: &str) -> String {
    let Some(t) = time::parse_rfc3339(ts) else {
        return "-".into();
    };
    match t.duration_since(std::time::SystemTime::now()) {
        Ok(ahead) => format!("in {}", coarse(ahead)),
        Err(_) => format!("{} ago", coarse(time::age(t))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn shortens() {
        assert_eq!(truncate("abcdef", 4), "abc…");
        assert_eq!(truncate("a\nb", 4), "a b");
        assert_eq!(coarse(Duration::from_secs(3 * 3600 + 300)), "3h 5m");
    }
}
