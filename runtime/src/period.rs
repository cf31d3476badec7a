//! Reset periods and the windows they cut time into. Pure: time is an argument.
//!
//! A window is `[start, end)` in milliseconds since the Unix epoch, UTC. Calendar windows
//! follow the clock (the hour, midnight, Monday, the 1st, January 1st); subscription windows
//! follow an anchor (a subscription started on the 31st resets monthly on the 31st, or on
//! the last day of shorter months).

use serde::{Deserialize, Serialize};

use crate::ledger::Timestamp;

const HOUR_MS: u64 = 3_600_000;
const DAY_MS: u64 = 24 * HOUR_MS;
const WEEK_MS: u64 = 7 * DAY_MS;
/// 1970-01-01 was a Thursday; the first Monday 00:00 UTC is 4 days later.
const FIRST_MONDAY_MS: u64 = 4 * DAY_MS;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Period {
    Hour,
    Day,
    Week,
    Month,
    Year,
    /// One window for all time.
    Never,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Anchor {
    /// Windows start at the anchor time and repeat from it.
    At(Timestamp),
    /// Windows follow the UTC calendar.
    Calendar,
}

/// `[start, end)`; `end` is `u64::MAX` for a window that never ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Window {
    pub start: Timestamp,
    pub end: Timestamp,
}

impl Window {
    pub const FOREVER: Window = Window {
        start: Timestamp(0),
        end: Timestamp(u64::MAX),
    };

    pub fn contains(&self, t: Timestamp) -> bool {
        self.start <= t && t < self.end
    }
}

/// The window of `period` that contains `now`. Before a subscription anchor, the first
/// window is returned.
pub fn window(period: Period, anchor: Anchor, now: Timestamp) -> Window {
    let now_ms = now.0;
    match (period, anchor) {
        (Period::Never, _) => Window::FOREVER,
        (Period::Hour, Anchor::Calendar) => fixed(0, HOUR_MS, now_ms),
        (Period::Day, Anchor::Calendar) => fixed(0, DAY_MS, now_ms),
        (Period::Week, Anchor::Calendar) => fixed(FIRST_MONDAY_MS, WEEK_MS, now_ms),
        (Period::Hour, Anchor::At(a)) => fixed(a.0, HOUR_MS, now_ms),
        (Period::Day, Anchor::At(a)) => fixed(a.0, DAY_MS, now_ms),
        (Period::Week, Anchor::At(a)) => fixed(a.0, WEEK_MS, now_ms),
        (Period::Month, Anchor::Calendar) => {
            let (y, m, _, _) = civil(now_ms);
            Window {
                start: Timestamp(to_ms(y, m, 1, 0)),
                end: Timestamp(add_months_ms(to_ms(y, m, 1, 0), 1)),
            }
        }
        (Period::Year, Anchor::Calendar) => {
            let (y, _, _, _) = civil(now_ms);
            Window {
                start: Timestamp(to_ms(y, 1, 1, 0)),
                end: Timestamp(to_ms(y + 1, 1, 1, 0)),
            }
        }
        (Period::Month, Anchor::At(a)) => by_months(a.0, 1, now_ms),
        (Period::Year, Anchor::At(a)) => by_months(a.0, 12, now_ms),
    }
}

/// Windows of fixed length `len` starting at `origin`.
fn fixed(origin: u64, len: u64, now: u64) -> Window {
    let k = now.saturating_sub(origin) / len;
    let start = origin.saturating_add(k.saturating_mul(len));
    Window {
        start: Timestamp(start),
        end: Timestamp(start.saturating_add(len)),
    }
}

/// Windows of `step` calendar months starting at `anchor`.
fn by_months(anchor: u64, step: i64, now: u64) -> Window {
    if now < anchor {
        return Window {
            start: Timestamp(anchor),
            end: Timestamp(add_months_ms(anchor, step)),
        };
    }
    let (ay, am, _, _) = civil(anchor);
    let (ny, nm, _, _) = civil(now);
    let months = (ny - ay) * 12 + (nm - am);
    let mut k = months.div_euclid(step);
    // The estimate is off by at most one window (day of month and time of day).
    while k > 0 && add_months_ms(anchor, k * step) > now {
        k -= 1;
    }
    while add_months_ms(anchor, (k + 1) * step) <= now {
        k += 1;
    }
    Window {
        start: Timestamp(add_months_ms(anchor, k * step)),
        end: Timestamp(add_months_ms(anchor, (k + 1) * step)),
    }
}

/// `ms` moved by `months` calendar months, the day clamped to the month's length.
fn add_months_ms(ms: u64, months: i64) -> u64 {
    let (y, m, d, t) = civil(ms);
    let total = y * 12 + (m - 1) + months;
    let (ny, nm) = (total.div_euclid(12), total.rem_euclid(12) + 1);
    to_ms(ny, nm, d.min(days_in_month(ny, nm)), t)
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        _ => 28,
    }
}

/// (year, month 1-12, day 1-31, ms into the day) of a Unix time in ms (Hinnant's
/// civil_from_days).
fn civil(ms: u64) -> (i64, i64, i64, u64) {
    let days = (ms / DAY_MS) as i64;
    let t = ms % DAY_MS;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d, t)
}

/// Unix time in ms of a civil date (Hinnant's days_from_civil); clamps before 1970 to 0.
fn to_ms(y: i64, m: i64, d: i64, t: u64) -> u64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    u64::try_from(days).map_or(0, |days| days.saturating_mul(DAY_MS).saturating_add(t))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2026-01-31T10:00:00Z
    const JAN_31: u64 = 1_769_853_600_000;

    #[test]
    fn civil_round_trips() {
        for ms in [
            0,
            JAN_31,
            951_782_400_000, /* 2000-02-29 */
            4_102_444_800_000,
        ] {
            let (y, m, d, t) = civil(ms);
            assert_eq!(to_ms(y, m, d, t), ms);
        }
        assert_eq!(civil(JAN_31), (2026, 1, 31, 10 * HOUR_MS));
    }

    #[test]
    fn calendar_windows() {
        let now = Timestamp(JAN_31);
        let day = window(Period::Day, Anchor::Calendar, now);
        assert_eq!(day.start.0, JAN_31 - 10 * HOUR_MS);
        assert_eq!(day.end.0 - day.start.0, DAY_MS);
        let month = window(Period::Month, Anchor::Calendar, now);
        assert_eq!(civil(month.start.0), (2026, 1, 1, 0));
        assert_eq!(civil(month.end.0), (2026, 2, 1, 0));
        let week = window(Period::Week, Anchor::Calendar, now);
        assert_eq!(civil(week.start.0), (2026, 1, 26, 0), "Monday");
        assert_eq!(
            window(Period::Never, Anchor::Calendar, now),
            Window::FOREVER
        );
    }

    #[test]
    fn monthly_subscription_anchored_on_the_31st_clamps() {
        let anchor = Anchor::At(Timestamp(JAN_31));
        let feb = window(Period::Month, anchor, Timestamp(JAN_31 + 20 * DAY_MS));
        assert_eq!(civil(feb.start.0), (2026, 1, 31, 10 * HOUR_MS));
        assert_eq!(civil(feb.end.0), (2026, 2, 28, 10 * HOUR_MS));
        let march = window(Period::Month, anchor, Timestamp(feb.end.0));
        assert_eq!(civil(march.start.0), (2026, 2, 28, 10 * HOUR_MS));
        assert_eq!(civil(march.end.0), (2026, 3, 31, 10 * HOUR_MS));
        for probe in [feb.start.0, feb.end.0 - 1, march.start.0 + 5] {
            assert!(window(Period::Month, anchor, Timestamp(probe)).contains(Timestamp(probe)));
        }
    }
}
