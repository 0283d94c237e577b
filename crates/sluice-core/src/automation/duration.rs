//! Times for `aws:sleep`: ISO 8601 durations (`PT10M`, `P1DT2H`) and timestamps
//! (`2026-01-01T00:00:00Z`), and the longest delay Automation allows.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::clock::Millis;

/// "Automation supports a maximum delay of 604799 seconds (7 days)": `P7D` itself is one second
/// too long.
pub const MAX_SLEEP: Duration = Duration::from_secs(604_799);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    #[error("{0:?} is not an ISO 8601 duration such as PT10M or P1DT2H")]
    Malformed(String),
    #[error("{0:?} is negative; a sleep duration can't be negative")]
    Negative(String),
    #[error("{0:?} uses years, months or weeks; use days, hours, minutes and seconds")]
    CalendarUnit(String),
    #[error("{0:?} is longer than the maximum delay of 604799 seconds (7 days)")]
    TooLong(String),
    #[error("{0:?} is not an ISO 8601 timestamp such as 2026-01-01T00:00:00Z")]
    Timestamp(String),
    #[error("aws:sleep needs exactly one of Duration or Timestamp, as a string")]
    Inputs,
}

/// Parses `P[nD][T[nH][nM][n[.f]S]]`, case-insensitively; no cap applied.
pub fn parse_duration(text: &str) -> Result<Duration, DurationError> {
    let malformed = || DurationError::Malformed(text.to_owned());
    if text.starts_with('-') {
        return Err(DurationError::Negative(text.to_owned()));
    }
    let upper = text.to_ascii_uppercase();
    let rest = upper.strip_prefix('P').ok_or_else(malformed)?;
    let (date, time) = match rest.split_once('T') {
        Some((date, time)) if !time.is_empty() => (date, Some(time)),
        Some(_) => return Err(malformed()),
        None => (rest, None),
    };
    if date.contains(['Y', 'W']) || date.contains('M') {
        return Err(DurationError::CalendarUnit(text.to_owned()));
    }
    let mut total = sum_components(date, &[('D', 86_400)]).ok_or_else(malformed)?;
    if let Some(time) = time {
        let clock = sum_components(time, &[('H', 3_600), ('M', 60), ('S', 1)]).ok_or_else(malformed)?;
        total = total.checked_add(clock).ok_or_else(|| DurationError::TooLong(text.to_owned()))?;
    }
    if date.is_empty() && time.is_none() {
        return Err(malformed());
    }
    Ok(total)
}

/// Adds up `<number><unit>` pairs whose units appear in `units` order, each at most once; only
/// seconds may have a fraction. None if the text doesn't follow that shape.
fn sum_components(mut text: &str, units: &[(char, u64)]) -> Option<Duration> {
    let mut total = Duration::ZERO;
    let mut next_unit = 0;
    while !text.is_empty() {
        let end = text.find(|c: char| !c.is_ascii_digit() && c != '.')?;
        let (number, unit) = (&text[..end], text[end..].chars().next()?);
        let position = units[next_unit..].iter().position(|(u, _)| *u == unit)? + next_unit;
        next_unit = position + 1;
        let seconds_per_unit = units[position].1;
        let part = match number.split_once('.') {
            Some((whole, fraction)) if unit == 'S' && !whole.is_empty() && !fraction.is_empty() => {
                let fraction: f64 = format!("0.{fraction}").parse().ok()?;
                Duration::from_secs(whole.parse().ok()?) + Duration::from_secs_f64(fraction)
            }
            Some(_) => return None,
            None => Duration::from_secs(number.parse::<u64>().ok()?.checked_mul(seconds_per_unit)?),
        };
        total = total.checked_add(part)?;
        text = &text[end + 1..];
    }
    Some(total)
}

/// Parses an RFC 3339 timestamp (the ISO 8601 profile AWS examples use).
pub fn parse_timestamp(text: &str) -> Result<DateTime<Utc>, DurationError> {
    DateTime::parse_from_rfc3339(text)
        .map(|at| at.with_timezone(&Utc))
        .map_err(|_| DurationError::Timestamp(text.to_owned()))
}

/// A duration no longer than [`MAX_SLEEP`].
pub fn parse_sleep_duration(text: &str) -> Result<Duration, DurationError> {
    let duration = parse_duration(text)?;
    if duration > MAX_SLEEP {
        return Err(DurationError::TooLong(text.to_owned()));
    }
    Ok(duration)
}

/// How long an `aws:sleep` step with these (rendered) inputs waits from `now`. A timestamp in the
/// past means no wait.
pub fn sleep_delay(inputs: &Value, now: Millis) -> Result<Duration, DurationError> {
    let duration = inputs.get("Duration");
    let timestamp = inputs.get("Timestamp");
    match (duration.and_then(Value::as_str), timestamp.and_then(Value::as_str)) {
        (Some(text), None) if timestamp.is_none() => parse_sleep_duration(text),
        (None, Some(text)) if duration.is_none() => {
            let wait = parse_timestamp(text)?.timestamp_millis().saturating_sub(now).max(0);
            let wait = Duration::from_millis(wait.unsigned_abs());
            if wait > MAX_SLEEP {
                return Err(DurationError::TooLong(text.to_owned()));
            }
            Ok(wait)
        }
        _ => Err(DurationError::Inputs),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn secs(text: &str) -> u64 {
        parse_duration(text).unwrap().as_secs()
    }

    #[test]
    fn durations_parse() {
        assert_eq!(secs("PT10S"), 10);
        assert_eq!(secs("PT5M"), 300);
        assert_eq!(secs("PT1H30M"), 5_400);
        assert_eq!(secs("P1D"), 86_400);
        assert_eq!(secs("P1DT2H"), 93_600);
        assert_eq!(secs("P1DT1H1M1S"), 90_061);
        assert_eq!(secs("pt3s"), 3);
        assert_eq!(secs("PT0S"), 0);
        assert_eq!(parse_duration("PT1.5S").unwrap(), Duration::from_millis(1_500));
    }

    #[test]
    fn garbage_is_rejected() {
        for text in [
            "", "P", "PT", "10S", "PT10", "PTS", "PT10X", "PT5S10M", "PT1M1M", "P1H", "PT1.5M", "PT.5S", "1D",
        ] {
            assert_eq!(parse_duration(text), Err(DurationError::Malformed(text.into())), "{text}");
        }
    }

    #[test]
    fn negatives_and_calendar_units_are_rejected() {
        assert_eq!(parse_duration("-PT10S"), Err(DurationError::Negative("-PT10S".into())));
        assert_eq!(parse_duration("P1Y"), Err(DurationError::CalendarUnit("P1Y".into())));
        assert_eq!(parse_duration("P2M"), Err(DurationError::CalendarUnit("P2M".into())));
        assert_eq!(parse_duration("P1W"), Err(DurationError::CalendarUnit("P1W".into())));
        assert!(parse_duration("-PT1S").unwrap_err().to_string().contains("can't be negative"));
    }

    #[test]
    fn sleep_is_capped_just_below_seven_days() {
        assert_eq!(parse_sleep_duration("P6DT23H59M59S").unwrap(), MAX_SLEEP);
        let err = parse_sleep_duration("P7D").unwrap_err();
        assert_eq!(err.to_string(), "\"P7D\" is longer than the maximum delay of 604799 seconds (7 days)");
        assert_eq!(
            parse_sleep_duration("PT99999999999999999999S"),
            Err(DurationError::Malformed("PT99999999999999999999S".into()))
        );
    }

    #[test]
    fn timestamps_parse() {
        assert_eq!(parse_timestamp("2026-01-01T00:00:00Z").unwrap().timestamp(), 1_767_225_600);
        assert_eq!(parse_timestamp("2026-01-01T02:00:00+02:00").unwrap().timestamp(), 1_767_225_600);
        assert_eq!(parse_timestamp("2026-01-01"), Err(DurationError::Timestamp("2026-01-01".into())));
    }

    #[test]
    fn sleep_delay_reads_either_input() {
        let now = 1_767_225_600_000;
        assert_eq!(sleep_delay(&json!({"Duration": "PT1M"}), now).unwrap(), Duration::from_secs(60));
        let later = json!({"Timestamp": "2026-01-01T00:10:00Z"});
        assert_eq!(sleep_delay(&later, now).unwrap(), Duration::from_secs(600));
        let past = json!({"Timestamp": "2020-01-01T00:00:00Z"});
        assert_eq!(sleep_delay(&past, now).unwrap(), Duration::ZERO);
        let far = json!({"Timestamp": "2026-01-08T00:00:00Z"});
        assert_eq!(sleep_delay(&far, now), Err(DurationError::TooLong("2026-01-08T00:00:00Z".into())));
    }

    #[test]
    fn sleep_delay_needs_exactly_one_string_input() {
        let now = 0;
        assert_eq!(sleep_delay(&json!({}), now), Err(DurationError::Inputs));
        assert_eq!(
            sleep_delay(&json!({"Duration": "PT1S", "Timestamp": "2026-01-01T00:00:00Z"}), now),
            Err(DurationError::Inputs)
        );
        assert_eq!(sleep_delay(&json!({"Duration": 5}), now), Err(DurationError::Inputs));
    }
}
