//! Durations as typed on the command line ("30d", "12h", "90m", "3600s") and wire
//! timestamps (ms since the Unix epoch) as people read them ("2025-11-28T14:20:00.000Z").

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Parses `<whole number><unit>` with unit `s`, `m`, `h` or `d`; zero is refused.
/// Used as a clap value parser, so the error is a sentence for the flag.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(|| format!("{text:?} needs a unit: s, m, h or d (for example 30d)"))?;
    let (number, unit) = text.split_at(split);
    let seconds_per_unit: u64 = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3_600,
        "d" => 86_400,
        _ => {
            return Err(format!(
                "{text:?}: unit must be s, m, h or d (for example 30d)"
            ));
        }
    };
    if number.is_empty() {
        return Err(format!("{text:?}: a number must come before the unit"));
    }
    let count: u64 = number
        .parse()
        .map_err(|_| format!("{text:?}: number too large"))?;
    if count == 0 {
        return Err(format!("{text:?}: must be longer than zero"));
    }
    let seconds = count
        .checked_mul(seconds_per_unit)
        .ok_or_else(|| format!("{text:?}: too long"))?;
    Ok(Duration::from_secs(seconds))
}

/// Now, in ms since the Unix epoch (0 if the clock is before 1970).
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// `now + after` in ms since the Unix epoch, or `None` on overflow.
pub fn ms_after(now_ms: i64, after: Duration) -> Option<i64> {
    i64::try_from(after.as_millis())
        .ok()
        .and_then(|ms| now_ms.checked_add(ms))
}

/// A wire timestamp as RFC 3339 in UTC with milliseconds.
pub fn format_time_ms(ms: i64) -> String {
    let days = ms.div_euclid(86_400_000);
    let ms_of_day = ms.rem_euclid(86_400_000);
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        ms_of_day / 3_600_000,
        ms_of_day / 60_000 % 60,
        ms_of_day / 1_000 % 60,
        ms_of_day % 1_000
    )
}

/// Year, month and day of a count of days since 1970-01-01 in the proleptic Gregorian
/// calendar (Howard Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_durations_in_every_unit() {
        assert_eq!(parse_duration("3600s").unwrap(), Duration::from_secs(3_600));
        assert_eq!(parse_duration("90m").unwrap(), Duration::from_secs(5_400));
        assert_eq!(parse_duration("12h").unwrap(), Duration::from_secs(43_200));
        assert_eq!(
            parse_duration("30d").unwrap(),
            Duration::from_secs(2_592_000)
        );
    }

    #[test]
    fn rejects_durations_without_a_valid_unit_or_number() {
        for text in [
            "", "30", "d", "30x", "30 d", "1.5h", "-1h", "30dd", "0s", "0d",
        ] {
            assert!(parse_duration(text).is_err(), "{text:?} was accepted");
        }
        assert!(parse_duration("30").unwrap_err().contains("needs a unit"));
        assert!(parse_duration("99999999999999999999d").is_err());
        assert!(
            parse_duration("18446744073709551615d")
                .unwrap_err()
                .contains("too long")
        );
    }

    #[test]
    fn formats_timestamps_as_utc() {
        assert_eq!(format_time_ms(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(format_time_ms(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(
            format_time_ms(1_764_339_600_123),
            "2025-11-28T14:20:00.123Z"
        );
        assert_eq!(format_time_ms(-1), "1969-12-31T23:59:59.999Z");
    }

    #[test]
    fn adds_durations_with_overflow_check() {
        assert_eq!(ms_after(1_000, Duration::from_secs(2)), Some(3_000));
        assert_eq!(ms_after(i64::MAX, Duration::from_millis(1)), None);
    }
}
