//! `strftime_now(format)`: the current UTC time in C `strftime` notation, as templates
//! (Llama 3.x, Granite) use it to print today's date.

use std::fmt::Write;

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const WEEKDAYS: [&str; 7] = [
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
];

/// A UTC time broken into fields.
struct CivilTime {
    year: i64,
    /// 1..=12
    month: u32,
    /// 1..=31
    day: u32,
    /// 0 = Monday
    weekday: u32,
    /// 1..=366
    day_of_year: u32,
    hour: u32,
    minute: u32,
    second: u32,
}

/// Seconds since the Unix epoch, now.
pub(super) fn unix_now() -> i64 {
    match std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(_) => 0,
    }
}

/// Days since 1970-01-01 to (year, month, day), Howard Hinnant's `civil_from_days`
/// (proleptic Gregorian calendar).
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

fn is_leap(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn civil_time(unix: i64) -> CivilTime {
    let days = unix.div_euclid(86_400);
    let secs = unix.rem_euclid(86_400) as u32;
    let (year, month, day) = civil_from_days(days);
    const CUMULATIVE: [u32; 12] = [0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334];
    let leap_day = u32::from(month > 2 && is_leap(year));
    CivilTime {
        year,
        month,
        day,
        // 1970-01-01 was a Thursday (3 when Monday is 0).
        weekday: (days + 3).rem_euclid(7) as u32,
        day_of_year: CUMULATIVE[(month - 1) as usize] + leap_day + day,
        hour: secs / 3600,
        minute: secs / 60 % 60,
        second: secs % 60,
    }
}

/// Formats `unix` (seconds, UTC) with a C `strftime` format. Supports the common
/// conversions (`%Y %y %m %d %e %j %H %I %M %S %p %a %A %b %B %h %F %T %D %R %Z %z %%`)
/// and glibc's `%-d` style unpadded numbers; anything else is copied as is.
pub(super) fn strftime(format: &str, unix: i64) -> String {
    let t = civil_time(unix);
    let month_name = MONTHS[(t.month - 1) as usize];
    let weekday_name = WEEKDAYS[t.weekday as usize];
    let hour12 = match t.hour % 12 {
        0 => 12,
        h => h,
    };
    let mut out = String::new();
    let mut chars = format.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let mut spec = chars.next();
        let unpadded = spec == Some('-');
        if unpadded {
            spec = chars.next();
        }
        let number = |out: &mut String, n: u32, width: usize| {
            if unpadded {
                let _ = write!(out, "{n}");
            } else {
                let _ = write!(out, "{n:0width$}");
            }
        };
        match spec {
            Some('Y') => {
                let _ = write!(out, "{}", t.year);
            }
            Some('y') => number(&mut out, t.year.rem_euclid(100) as u32, 2),
            Some('m') => number(&mut out, t.month, 2),
            Some('d') => number(&mut out, t.day, 2),
            Some('e') => {
                let _ = write!(out, "{:>2}", t.day);
            }
            Some('j') => number(&mut out, t.day_of_year, 3),
            Some('H') => number(&mut out, t.hour, 2),
            Some('I') => number(&mut out, hour12, 2),
            Some('M') => number(&mut out, t.minute, 2),
            Some('S') => number(&mut out, t.second, 2),
            Some('p') => out.push_str(if t.hour < 12 { "AM" } else { "PM" }),
            Some('a') => out.push_str(&weekday_name[..3]),
            Some('A') => out.push_str(weekday_name),
            Some('b') | Some('h') => out.push_str(&month_name[..3]),
            Some('B') => out.push_str(month_name),
            Some('F') => {
                let _ = write!(out, "{}-{:02}-{:02}", t.year, t.month, t.day);
            }
            Some('T') => {
                let _ = write!(out, "{:02}:{:02}:{:02}", t.hour, t.minute, t.second);
            }
            Some('R') => {
                let _ = write!(out, "{:02}:{:02}", t.hour, t.minute);
            }
            Some('D') => {
                let _ = write!(
                    out,
                    "{:02}/{:02}/{:02}",
                    t.month,
                    t.day,
                    t.year.rem_euclid(100)
                );
            }
            Some('Z') => out.push_str("UTC"),
            Some('z') => out.push_str("+0000"),
            Some('%') => out.push('%'),
            Some(other) => {
                out.push('%');
                if unpadded {
                    out.push('-');
                }
                out.push(other);
            }
            None => out.push('%'),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::strftime;

    #[test]
    fn formats_dates_as_python_does() {
        // 2026-01-15 09:30:00 UTC, a Thursday.
        let t = 1_768_469_400;
        assert_eq!(strftime("%d %b %Y", t), "15 Jan 2026");
        assert_eq!(
            strftime("%B %-d, %Y %A %j", t),
            "January 15, 2026 Thursday 015"
        );
        assert_eq!(
            strftime("%Y-%m-%d %H:%M:%S %p %%", t),
            "2026-01-15 09:30:00 AM %"
        );
        // 2024-02-29 23:59:59 UTC, a leap day.
        assert_eq!(
            strftime("%F %T %a %j", 1_709_251_199),
            "2024-02-29 23:59:59 Thu 060"
        );
        assert_eq!(strftime("%d %b %Y", 0), "01 Jan 1970");
    }
}
