use std::fmt;

use phonenumber::{Mode, country};

/// A mobile phone number in E.164 form (`+48601234567`), from a country the city accepts.
/// Only mobile numbers: SMS to landlines fails, and premium ranges are how SMS pumping pays.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PhoneNumber(String);

impl PhoneNumber {
    /// `allowed` lists ISO country codes (`PL`, `UA`, …). Numbers without a `+` prefix are
    /// read as Polish.
    pub fn parse(raw: &str, allowed: &[String]) -> Result<PhoneNumber, String> {
        let cleaned: String = raw.chars().filter(|c| !matches!(c, ' ' | '-' | '(' | ')' | '.')).collect();
        if cleaned.is_empty() {
            return Err("is empty".into());
        }
        let number = phonenumber::parse(Some(country::Id::PL), &cleaned).map_err(|_| "is not a phone number".to_string())?;
        if !phonenumber::is_valid(&number) {
            return Err("is not a valid phone number".into());
        }
        let region = number.country().id().map(|id| format!("{id:?}")).unwrap_or_default();
        if !allowed.iter().any(|a| a.eq_ignore_ascii_case(&region)) {
            return Err(format!("numbers from {} are not accepted", if region.is_empty() { "this country" } else { &region }));
        }
        match number.number_type(&phonenumber::metadata::DATABASE) {
            phonenumber::Type::Mobile | phonenumber::Type::FixedLineOrMobile => {}
            _ => return Err("must be a mobile number".into()),
        }
        Ok(PhoneNumber(number.format().mode(Mode::E164).to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for PhoneNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pl() -> Vec<String> {
        vec!["PL".into()]
    }

    #[test]
    fn polish_mobiles_with_or_without_the_prefix_become_e164() {
        for raw in ["601 234 567", "+48 601-234-567", "48601234567", "+48601234567"] {
            assert_eq!(PhoneNumber::parse(raw, &pl()).unwrap().as_str(), "+48601234567", "{raw}");
        }
    }

    #[test]
    fn a_krakow_landline_is_refused() {
        let err = PhoneNumber::parse("12 616 12 00", &pl()).unwrap_err();
        assert!(err.contains("mobile"), "{err}");
    }

    #[test]
    fn a_country_outside_the_list_is_refused() {
        let err = PhoneNumber::parse("+380 67 123 4567", &pl()).unwrap_err();
        assert!(err.contains("UA"), "{err}");
        let ok = PhoneNumber::parse("+380 67 123 4567", &["PL".into(), "UA".into()]).unwrap();
        assert_eq!(ok.as_str(), "+380671234567");
    }

    #[test]
    fn garbage_is_refused() {
        for bad in ["", "abc", "123", "+48 601"] {
            assert!(PhoneNumber::parse(bad, &pl()).is_err(), "{bad}");
        }
    }

    proptest::proptest! {
        /// Whatever is typed, an accepted number is Polish E.164, and parsing it again keeps it.
        #[test]
        fn an_accepted_number_is_polish_e164(raw in proptest::prop_oneof!["[+]?[0-9 ()./-]{0,18}", proptest::prelude::any::<String>()]) {
            if let Ok(number) = PhoneNumber::parse(&raw, &pl()) {
                let s = number.as_str();
                proptest::prop_assert!(s.starts_with("+48") && s.len() == 12 && s[1..].chars().all(|c| c.is_ascii_digit()), "{:?} gave {:?}", raw, s);
                proptest::prop_assert_eq!(PhoneNumber::parse(s, &pl()).map(|n| n.as_str().to_owned()), Ok(s.to_owned()));
            }
        }

        /// Spaces, dashes, dots and brackets never change the number.
        #[test]
        fn separators_do_not_matter(digits in "[5-8][0-9]{8}", seps in proptest::collection::vec("[ ().-]{0,2}", 9)) {
            let spaced: String = digits.chars().zip(&seps).flat_map(|(d, sep)| std::iter::once(d).chain(sep.chars())).collect();
            let plain = PhoneNumber::parse(&digits, &pl()).map(|n| n.as_str().to_owned());
            proptest::prop_assert_eq!(PhoneNumber::parse(&spaced, &pl()).map(|n| n.as_str().to_owned()), plain);
        }
    }
}
