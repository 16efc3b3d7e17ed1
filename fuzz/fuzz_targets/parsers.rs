//! What residents type and officials write, straight from the fuzzer: the contact parsers and
//! the SMS segment counter must never panic, and what they accept keeps their promises
//! (the same ones the property tests check, on inputs no strategy thought of).
#![no_main]

use hejnal::{
    channels::sms::{SmsEncoding, analyse, transliterate_polish},
    domain::{EmailAddress, PhoneNumber},
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &str| {
    if let Ok(address) = EmailAddress::parse(input) {
        let s = address.as_str();
        assert!(!s.chars().any(|c| c.is_whitespace() || c.is_control()), "{s:?}");
        assert_eq!(EmailAddress::parse(s).map(|a| a.as_str().to_owned()), Ok(s.to_owned()));
    }
    let countries = ["PL".to_owned(), "UA".to_owned()];
    if let Ok(number) = PhoneNumber::parse(input, &countries) {
        let s = number.as_str();
        assert!(s.starts_with('+') && s[1..].chars().all(|c| c.is_ascii_digit()), "{s:?}");
        assert_eq!(PhoneNumber::parse(s, &countries).map(|n| n.as_str().to_owned()), Ok(s.to_owned()));
    }
    let stats = analyse(input);
    assert_eq!(stats.segments == 0, input.is_empty());
    if stats.encoding == SmsEncoding::Ucs2 {
        assert_eq!(stats.units, input.encode_utf16().count());
    }
    assert!(analyse(&transliterate_polish(input)).segments <= stats.segments, "transliteration never costs a segment");
});
