//! Timestamps in RFC 3339 UTC, read and written without a date crate:
//! the run records, the journal, and the metadata services' expiry times.

/// Seconds since the epoch now (0 if the clock is before it).
pub fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The current time as an RFC 3339 UTC timestamp, without a date crate.
pub fn now_utc() -> String {
    format_utc(now_secs())
}

/// Seconds since the epoch of `YYYY-MM-DDTHH:MM:SS` followed by `Z` or
/// `+0000` (UTC only), the inverse of [`format_utc`]; `None` for anything
/// else.
pub fn parse_utc(text: &str) -> Option<u64> {
    let (date, time) = text.split_once('T')?;
    let time = time
        .strip_suffix("+0000")
        .or_else(|| time.strip_suffix('Z'))?;
    let number = |s: &str| s.parse::<i64>().ok();
    let mut d = date.splitn(3, '-').map(number);
    let (year, month, day) = (d.next()??, d.next()??, d.next()??);
    let mut t = time.splitn(3, ':').map(number);
    let (hh, mm, ss) = (t.next()??, t.next()??, t.next()??);
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || !(0..24).contains(&hh)
        || !(0..60).contains(&mm)
        || !(0..61).contains(&ss)
    {
        return None;
    }
    // Days-from-civil (Howard Hinnant's algorithm), the inverse of the
    // civil-from-days in format_utc.
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (month + if month > 2 { -3 } else { 9 }) + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    u64::try_from(days * 86_400 + hh * 3600 + mm * 60 + ss).ok()
}

/// Format seconds since the epoch as `YYYY-MM-DDTHH:MM:SSZ`.
pub fn format_utc(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Civil-from-days (Howard Hinnant's algorithm), valid for all u64 times we meet.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_times_read_back_as_written() {
        for secs in [0, 951_913_815, 1_709_164_800, 1_795_000_000] {
            assert_eq!(parse_utc(&format_utc(secs)), Some(secs), "{secs}");
        }
        assert_eq!(parse_utc("2000-03-01T12:30:15+0000"), Some(951_913_815));
        assert_eq!(parse_utc("2024-02-29T25:00:00Z"), None);
        assert_eq!(parse_utc("soon"), None);
    }

    #[test]
    fn dates() {
        assert_eq!(format_utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(format_utc(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(format_utc(1_795_603_845), "2026-11-25T10:50:45Z");
    }
}
