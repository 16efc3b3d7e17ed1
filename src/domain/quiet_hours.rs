use chrono::NaiveTime;
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

    pub fn to_json(self) -> QuietHoursJson {
        QuietHoursJson { from: self.from.format("%H:%M").to_string(), to: self.to.format("%H:%M").to_string() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
