//! Wall-clock arithmetic: Vigil keeps instants as microseconds since the Unix
//! epoch (UTC), which order and subtract exactly and cross threads for free.

/// Microseconds since 1970-01-01T00:00:00Z.
pub type UnixMicros = i64;

/// Converts a TOML date-time with a UTC offset to Unix microseconds; `None`
/// when the value lacks a date, a time or an offset (an ambiguous instant).
pub fn toml_datetime_to_unix_us(dt: &toml::value::Datetime) -> Option<UnixMicros> {
    let date = dt.date?;
    let time = dt.time?;
    let offset_minutes: i64 = match dt.offset? {
        toml::value::Offset::Z => 0,
        toml::value::Offset::Custom { minutes } => i64::from(minutes),
    };
    let days = days_from_civil(
        i64::from(date.year),
        i64::from(date.month),
        i64::from(date.day),
    );
    let seconds = days * 86_400
        + i64::from(time.hour) * 3_600
        + i64::from(time.minute) * 60
        + i64::from(time.second.unwrap_or(0))
        - offset_minutes * 60;
    Some(seconds * 1_000_000 + i64::from(time.nanosecond.unwrap_or(0)) / 1_000)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
pub fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Local date and time `YYYY-MM-DD HH:MM:SS.mmm (+07:00)` from Unix µs and
/// a UTC offset written `+07:00`.
pub fn format_local(us: UnixMicros, offset: &str) -> String {
    let sign = if offset.starts_with('-') { -1 } else { 1 };
    let digits: Vec<i64> = offset
        .trim_start_matches(['+', '-'])
        .split(':')
        .filter_map(|p| p.parse().ok())
        .collect();
    let offset_s = sign
        * (digits.first().copied().unwrap_or(0) * 3600 + digits.get(1).copied().unwrap_or(0) * 60);
    let t = us.div_euclid(1000) + offset_s * 1000;
    let (days, ms_of_day) = (t.div_euclid(86_400_000), t.rem_euclid(86_400_000));
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}.{:03} ({offset})",
        ms_of_day / 3_600_000,
        ms_of_day / 60_000 % 60,
        ms_of_day / 1000 % 60,
        ms_of_day % 1000
    )
}

/// The current wall clock as Unix microseconds.
pub fn now_unix_us() -> UnixMicros {
    match std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_micros()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_micros()).unwrap_or(i64::MAX),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> toml::value::Datetime {
        s.parse().expect("valid TOML date-time")
    }

    #[test]
    fn offsets_are_applied() {
        assert_eq!(
            toml_datetime_to_unix_us(&parse("1970-01-01T00:00:00Z")),
            Some(0)
        );
        assert_eq!(
            toml_datetime_to_unix_us(&parse("1970-01-01T07:00:00+07:00")),
            Some(0)
        );
        // 2026-03-14T08:00:00+01:00 = 2026-03-14T07:00:00Z = 1773471600 s.
        assert_eq!(
            toml_datetime_to_unix_us(&parse("2026-03-14T08:00:00.25+01:00")),
            Some(1_773_471_600_250_000)
        );
    }

    #[test]
    fn instants_without_offset_are_rejected() {
        assert_eq!(
            toml_datetime_to_unix_us(&parse("2026-03-14T08:00:00")),
            None
        );
        assert_eq!(toml_datetime_to_unix_us(&parse("2026-03-14")), None);
    }
}
