use chrono::{DateTime, Datelike, Duration, FixedOffset, NaiveDate, NaiveTime, TimeZone, Utc, Weekday};
use serde::{Deserialize, Serialize};

/// Hours, in Europe/Warsaw time, when Moderate and Minor messages wait. `from` may be after
/// `to` (22:00–07:00 spans midnight).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuietHours {
    pub from: NaiveTime,
    pub to: NaiveTime,
}

/// The shape on the wire: `{"from": "22:00", "to": "07:00"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct QuietHoursJson {
    pub from: String,
    pub to: String,
}

impl QuietHours {
    pub fn parse(json: &QuietHoursJson) -> Result<QuietHours, (&'static str, String)> {
        let time = |field: &'static str, s: &str| {
            NaiveTime::parse_from_str(s, "%H:%M").map_err(|_| (field, format!("{s:?} is not a time like 22:00")))
        };
        let from = time("quiet_hours.from", &json.from)?;
        let to = time("quiet_hours.to", &json.to)?;
        if from == to {
            return Err(("quiet_hours", "from and to must differ".into()));
        }
        Ok(QuietHours { from, to })
    }

    /// When the quiet period that `now` falls in ends; None outside quiet hours.
    pub fn ends_after(self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let local = now.with_timezone(&warsaw_offset(now));
        let t = local.time();
        let quiet = if self.from < self.to { self.from <= t && t < self.to } else { t >= self.from || t < self.to };
        if !quiet {
            return None;
        }
        let day = if t < self.to { local.date_naive() } else { local.date_naive().succ_opt()? };
        let end_local = day.and_time(self.to);
        // The offset of the end itself: a quiet night may span a change to or from summer time.
        let guess = Utc.from_utc_datetime(&(end_local - Duration::hours(1)));
        let offset = warsaw_offset(guess);
        offset.from_local_datetime(&end_local).single().map(|d| d.with_timezone(&Utc))
    }

    pub fn to_json(self) -> QuietHoursJson {
        QuietHoursJson { from: self.from.format("%H:%M").to_string(), to: self.to.format("%H:%M").to_string() }
    }
}

/// Kraków's offset from UTC at `at`: CEST (+2) from the last Sunday of March, 01:00 UTC, to
/// the last Sunday of October, 01:00 UTC (the EU rule), CET (+1) otherwise. Two dates a year
/// do not justify a time zone database in the binary.
pub fn warsaw_offset(at: DateTime<Utc>) -> FixedOffset {
    let year = at.year();
    let starts = last_sunday(year, 3).and_hms_opt(1, 0, 0).expect("valid time").and_utc();
    let ends = last_sunday(year, 10).and_hms_opt(1, 0, 0).expect("valid time").and_utc();
    let hours = if at >= starts && at < ends { 2 } else { 1 };
    FixedOffset::east_opt(hours * 3600).expect("valid offset")
}

fn last_sunday(year: i32, month: u32) -> NaiveDate {
    let mut day = NaiveDate::from_ymd_opt(year, month + 1, 1).expect("valid date").pred_opt().expect("valid date");
    while day.weekday() != Weekday::Sun {
        day = day.pred_opt().expect("valid date");
    }
    day
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn summer_and_winter_time_follow_the_eu_rule() {
        assert_eq!(warsaw_offset(utc("2026-01-15T12:00:00Z")).local_minus_utc(), 3600);
        assert_eq!(warsaw_offset(utc("2026-07-15T12:00:00Z")).local_minus_utc(), 7200);
        // 2026: summer time from 29 March 01:00 UTC to 25 October 01:00 UTC.
        assert_eq!(warsaw_offset(utc("2026-03-29T00:59:00Z")).local_minus_utc(), 3600);
        assert_eq!(warsaw_offset(utc("2026-03-29T01:00:00Z")).local_minus_utc(), 7200);
        assert_eq!(warsaw_offset(utc("2026-10-25T01:00:00Z")).local_minus_utc(), 3600);
    }

    #[test]
    fn a_night_in_quiet_hours_ends_at_the_local_morning() {
        let q = QuietHours::parse(&QuietHoursJson { from: "22:00".into(), to: "07:00".into() }).unwrap();
        // 23:30 in Kraków in winter (UTC+1) ends at 07:00 local = 06:00 UTC next day.
        assert_eq!(q.ends_after(utc("2026-11-23T22:30:00Z")), Some(utc("2026-11-24T06:00:00Z")));
        // 03:00 local in summer ends the same morning at 05:00 UTC.
        assert_eq!(q.ends_after(utc("2026-07-01T01:00:00Z")), Some(utc("2026-07-01T05:00:00Z")));
        // Noon is not quiet.
        assert_eq!(q.ends_after(utc("2026-11-23T11:00:00Z")), None);
    }

    #[test]
    fn hours_across_midnight_parse_and_print_back() {
        let json = QuietHoursJson { from: "22:00".into(), to: "07:00".into() };
        assert_eq!(QuietHours::parse(&json).unwrap().to_json(), json);
    }

    #[test]
    fn a_bad_time_names_its_field() {
        let json = QuietHoursJson { from: "22:00".into(), to: "7am".into() };
        assert_eq!(QuietHours::parse(&json).unwrap_err().0, "quiet_hours.to");
    }
}
