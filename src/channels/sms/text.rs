//! What an SMS text costs: its encoding, its length in the encoding's units, and the number of
//! segments (each billed as one SMS) a phone network splits it into.
//!
//! A text entirely in the GSM 03.38 alphabet (3GPP TS 23.038) goes as 7-bit septets: 160 in one
//! SMS, 153 per segment once it needs several (the rest carries the concatenation header).
//! Characters of the extension table cost two septets, an escape and the character, and a
//! segment never ends between the two. Any other character, one Polish `ą` or `ó` included,
//! sends the whole text as UCS-2 (UTF-16 in practice): 70 units in one SMS, 67 per segment,
//! and a segment never ends inside a surrogate pair.

use serde::Serialize;

/// The GSM 03.38 basic table, in code order, without 0x1B (the escape to the extension table).
/// It holds some accented letters (`é`, `ö`, `ñ`, `à`…) but none of Polish's own: `ó` is not
/// `ò`, and `ą ć ę ł ń ś ź ż` are missing altogether.
const GSM7_BASIC: &str = concat!(
    "@£$¥èéùìòÇ\nØø\rÅå",
    "Δ_ΦΓΛΩΠΨΣΘΞÆæßÉ",
    " !\"#¤%&'()*+,-./",
    "0123456789:;<=>?",
    "¡ABCDEFGHIJKLMNO",
    "PQRSTUVWXYZÄÖÑÜ§",
    "¿abcdefghijklmno",
    "pqrstuvwxyzäöñüà",
);

/// The extension table: form feed, `^ { } \ [ ~ ] |` and the euro sign. Each costs an escape
/// septet before it.
const GSM7_EXTENSION: &str = "\u{c}^{}\\[~]|€";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SmsEncoding {
    /// The GSM 03.38 7-bit alphabet.
    Gsm7,
    /// UCS-2 / UTF-16: any character at all, at less than half the room.
    Ucs2,
}

impl SmsEncoding {
    /// Units that fit in a single SMS, and in each segment of a longer text (the rest of a
    /// segment carries the concatenation header).
    fn room(self) -> (usize, usize) {
        match self {
            SmsEncoding::Gsm7 => (160, 153),
            SmsEncoding::Ucs2 => (70, 67),
        }
    }
}

/// What a text costs as an SMS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct SmsStats {
    /// Characters as people count them (Unicode scalar values).
    pub characters: usize,
    pub encoding: SmsEncoding,
    /// SMS billed for the text; 0 for an empty text.
    pub segments: usize,
    /// Length in the encoding's units: septets for GSM-7, UTF-16 code units for UCS-2.
    pub units: usize,
}

/// The encoding, length and segment count of `text` as an SMS.
pub fn analyse(text: &str) -> SmsStats {
    let (encoding, costs) = match gsm7_costs(text) {
        Some(septets) => (SmsEncoding::Gsm7, septets),
        None => (SmsEncoding::Ucs2, text.chars().map(char::len_utf16).collect()),
    };
    let (single, per_segment) = encoding.room();
    SmsStats {
        characters: text.chars().count(),
        encoding,
        segments: segments(&costs, single, per_segment),
        units: costs.iter().sum(),
    }
}

/// The septets of each character, or `None` when one is outside the GSM 03.38 alphabet.
fn gsm7_costs(text: &str) -> Option<Vec<usize>> {
    text.chars().map(gsm7_septets).collect()
}

fn gsm7_septets(c: char) -> Option<usize> {
    if GSM7_BASIC.contains(c) {
        Some(1)
    } else if GSM7_EXTENSION.contains(c) {
        Some(2)
    } else {
        None
    }
}

/// Segments for characters of these unit costs: one if they all fit in `single`, otherwise
/// filled in order `per_segment` units at a time, a character never split between two.
fn segments(costs: &[usize], single: usize, per_segment: usize) -> usize {
    let total: usize = costs.iter().sum();
    if total == 0 {
        return 0;
    }
    if total <= single {
        return 1;
    }
    let mut count = 1;
    let mut used = 0;
    for &cost in costs {
        if used + cost > per_segment {
            count += 1;
            used = 0;
        }
        used += cost;
    }
    count
}

/// Polish letters with diacritics replaced by their plain ASCII letter (`ą`→`a`, `ł`→`l`,
/// `ó`→`o`, `Ż`→`Z`…), everything else left as it is. A Polish text becomes GSM-7, at 160
/// characters an SMS instead of 70.
pub fn transliterate_polish(text: &str) -> String {
    text.chars().map(|c| plain_polish(c).unwrap_or(c)).collect()
}

fn plain_polish(c: char) -> Option<char> {
    Some(match c {
        'ą' => 'a',
        'ć' => 'c',
        'ę' => 'e',
        'ł' => 'l',
        'ń' => 'n',
        'ó' => 'o',
        'ś' => 's',
        'ź' | 'ż' => 'z',
        'Ą' => 'A',
        'Ć' => 'C',
        'Ę' => 'E',
        'Ł' => 'L',
        'Ń' => 'N',
        'Ó' => 'O',
        'Ś' => 'S',
        'Ź' | 'Ż' => 'Z',
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn stats(text: &str) -> (SmsEncoding, usize, usize) {
        let s = analyse(text);
        (s.encoding, s.units, s.segments)
    }

    #[test]
    fn the_basic_table_has_its_128_codes_less_the_escape() {
        assert_eq!(GSM7_BASIC.chars().count(), 127);
        assert_eq!(GSM7_EXTENSION.chars().count(), 10);
        let mut all: Vec<char> = GSM7_BASIC.chars().chain(GSM7_EXTENSION.chars()).collect();
        all.sort();
        all.dedup();
        assert_eq!(all.len(), 137, "a character is in both tables or twice in one");
    }

    #[test]
    fn a_short_ascii_text_is_one_gsm7_sms() {
        let s = analyse("Awaria wodociagu: Podgorze, do 18:00.");
        assert_eq!(s, SmsStats { characters: 37, encoding: SmsEncoding::Gsm7, segments: 1, units: 37 });
    }

    #[test]
    fn an_empty_text_costs_nothing() {
        assert_eq!(analyse(""), SmsStats { characters: 0, encoding: SmsEncoding::Gsm7, segments: 0, units: 0 });
    }

    #[test]
    fn gsm7_holds_160_in_one_sms_and_153_per_segment_after() {
        let a = |n: usize| "a".repeat(n);
        assert_eq!(stats(&a(160)), (SmsEncoding::Gsm7, 160, 1));
        assert_eq!(stats(&a(161)), (SmsEncoding::Gsm7, 161, 2));
        assert_eq!(stats(&a(306)), (SmsEncoding::Gsm7, 306, 2));
        assert_eq!(stats(&a(307)), (SmsEncoding::Gsm7, 307, 3));
        assert_eq!(stats(&a(459)), (SmsEncoding::Gsm7, 459, 3));
    }

    #[test]
    fn extension_characters_cost_two_septets() {
        for c in ['€', '[', ']', '{', '}', '\\', '^', '~', '|', '\u{c}'] {
            assert_eq!(stats(&c.to_string()), (SmsEncoding::Gsm7, 2, 1), "{c:?}");
        }
        let s = analyse(&"€".repeat(80));
        assert_eq!((s.characters, s.units, s.segments), (80, 160, 1));
        assert_eq!(analyse(&"€".repeat(81)).segments, 2);
    }

    #[test]
    fn an_escape_pair_is_never_split_between_segments() {
        // 152 + 2 + 152 = 306 septets: two segments by arithmetic, but the euro sign cannot
        // take the first segment's last septet, so it starts the second and the text needs three.
        let text = format!("{}€{}", "a".repeat(152), "a".repeat(152));
        assert_eq!(stats(&text), (SmsEncoding::Gsm7, 306, 3));
        let text = format!("{}€{}", "a".repeat(151), "a".repeat(153));
        assert_eq!(stats(&text), (SmsEncoding::Gsm7, 306, 2));
    }

    #[test]
    fn accented_letters_of_the_gsm_table_stay_gsm7() {
        assert_eq!(analyse("é è ù ì ò Ç Ø ø Å å Æ æ ß É Ä Ö Ñ Ü ä ö ñ ü à ¡ ¿ § ¤ £ ¥ Δ Ω").encoding, SmsEncoding::Gsm7);
        assert_eq!(analyse("@ $ _ \r\n").encoding, SmsEncoding::Gsm7);
    }

    #[test]
    fn one_letter_outside_the_table_makes_the_whole_text_ucs2() {
        for text in ["Kraków", "ą", "ć", "ę", "ł", "ń", "ó", "ś", "ź", "ż", "Ż", "ç", "á", "`", "Київ", "\u{1b}"] {
            assert_eq!(analyse(text).encoding, SmsEncoding::Ucs2, "{text:?}");
        }
        let s = analyse("Uwaga: smog w Krakowie, zostań w domu.");
        assert_eq!((s.encoding, s.units, s.segments), (SmsEncoding::Ucs2, 38, 1));
    }

    #[test]
    fn ucs2_holds_70_in_one_sms_and_67_per_segment_after() {
        let a = |n: usize| "ą".repeat(n);
        assert_eq!(stats(&a(70)), (SmsEncoding::Ucs2, 70, 1));
        assert_eq!(stats(&a(71)), (SmsEncoding::Ucs2, 71, 2));
        assert_eq!(stats(&a(134)), (SmsEncoding::Ucs2, 134, 2));
        assert_eq!(stats(&a(135)), (SmsEncoding::Ucs2, 135, 3));
    }

    #[test]
    fn a_surrogate_pair_is_never_split_between_segments() {
        let s = analyse("🚨");
        assert_eq!((s.characters, s.encoding, s.units, s.segments), (1, SmsEncoding::Ucs2, 2, 1));
        // 66 + 2 + 66 = 134 units: two segments by arithmetic, three with the emoji kept whole.
        let text = format!("{}🚨{}", "ą".repeat(66), "ą".repeat(66));
        assert_eq!(stats(&text), (SmsEncoding::Ucs2, 134, 3));
    }

    #[test]
    fn polish_letters_become_plain_ones() {
        assert_eq!(transliterate_polish("Zażółć gęślą jaźń"), "Zazolc gesla jazn");
        assert_eq!(transliterate_polish("ĄĆĘŁŃÓŚŹŻ ąćęłńóśźż"), "ACELNOSZZ acelnoszz");
        assert_eq!(transliterate_polish("Київ, Škoda, naïve €"), "Київ, Škoda, naïve €");
        assert_eq!(analyse(&transliterate_polish("Uwaga: smog w Krakowie, zostań w domu.")).encoding, SmsEncoding::Gsm7);
    }

    #[test]
    fn the_encoding_is_named_in_snake_case() {
        let json = serde_json::to_value(analyse("ok")).unwrap();
        assert_eq!(json, serde_json::json!({"characters": 2, "encoding": "gsm7", "segments": 1, "units": 2}));
        assert_eq!(serde_json::to_value(SmsEncoding::Ucs2).unwrap(), "ucs2");
    }

    /// Any character of the GSM 03.38 tables.
    fn gsm7_char() -> impl Strategy<Value = char> {
        let all: Vec<char> = GSM7_BASIC.chars().chain(GSM7_EXTENSION.chars()).collect();
        proptest::sample::select(all)
    }

    /// Polish prose: plain letters, digits, punctuation, and every Polish diacritic.
    fn polish_text() -> impl Strategy<Value = String> {
        let alphabet: Vec<char> =
            ('a'..='z').chain('A'..='Z').chain('0'..='9').chain("ąćęłńóśźżĄĆĘŁŃÓŚŹŻ .,:;!?-()\n".chars()).collect();
        proptest::collection::vec(proptest::sample::select(alphabet), 0..400).prop_map(|chars| chars.into_iter().collect())
    }

    /// Arbitrary text, all-GSM-7 text and Polish prose in equal parts: arbitrary strings alone
    /// almost never hold a Polish letter nor stay within the GSM-7 tables, so properties about
    /// either would go unchecked.
    fn mixed_text() -> impl Strategy<Value = String> {
        prop_oneof![
            any::<String>(),
            proptest::collection::vec(gsm7_char(), 0..200).prop_map(|chars| chars.into_iter().collect()),
            polish_text(),
        ]
    }

    /// Characters of the basic table only (one septet each).
    fn gsm7_basic_char() -> impl Strategy<Value = char> {
        proptest::sample::select(GSM7_BASIC.chars().collect::<Vec<char>>())
    }

    /// Characters of the Basic Multilingual Plane outside both GSM tables: one UTF-16 unit each.
    fn bmp_char_outside_gsm7() -> impl Strategy<Value = char> {
        proptest::char::range('\u{80}', '\u{FFFF}').prop_filter("not GSM-7", |c| gsm7_septets(*c).is_none())
    }

    proptest! {
        #[test]
        fn basic_gsm7_text_takes_160_then_153_a_segment(chars in proptest::collection::vec(gsm7_basic_char(), 1..1200)) {
            let s = analyse(&chars.iter().collect::<String>());
            prop_assert_eq!(s.encoding, SmsEncoding::Gsm7);
            prop_assert_eq!(s.units, chars.len());
            let expected = if chars.len() <= 160 { 1 } else { chars.len().div_ceil(153) };
            prop_assert_eq!(s.segments, expected);
        }

        #[test]
        fn bmp_ucs2_text_takes_70_then_67_a_segment(
            first in bmp_char_outside_gsm7(),
            rest in proptest::collection::vec(prop_oneof![gsm7_basic_char(), bmp_char_outside_gsm7()], 0..600),
        ) {
            let text: String = std::iter::once(first).chain(rest).collect();
            let s = analyse(&text);
            prop_assert_eq!(s.encoding, SmsEncoding::Ucs2);
            let units = text.chars().count();
            prop_assert_eq!(s.units, units);
            let expected = if units <= 70 { 1 } else { units.div_ceil(67) };
            prop_assert_eq!(s.segments, expected);
        }

        #[test]
        fn the_encoding_is_gsm7_exactly_when_every_character_is_in_the_tables(text in mixed_text()) {
            let all_gsm7 = text.chars().all(|c| gsm7_septets(c).is_some());
            prop_assert_eq!(analyse(&text).encoding == SmsEncoding::Gsm7, all_gsm7);
        }

        #[test]
        fn only_the_empty_text_has_no_segment(text in any::<String>()) {
            let s = analyse(&text);
            prop_assert_eq!(s.segments == 0, text.is_empty());
            prop_assert_eq!(s.units == 0, text.is_empty());
        }

        #[test]
        fn transliterated_polish_is_gsm7_and_never_longer(text in polish_text()) {
            let plain = transliterate_polish(&text);
            prop_assert_eq!(analyse(&plain).encoding, SmsEncoding::Gsm7);
            prop_assert_eq!(plain.chars().count(), text.chars().count());
            prop_assert!(analyse(&plain).segments <= analyse(&text).segments);
        }

        #[test]
        fn transliteration_never_costs_a_segment(text in mixed_text()) {
            prop_assert!(analyse(&transliterate_polish(&text)).segments <= analyse(&text).segments);
        }

        #[test]
        fn appending_never_lowers_the_segment_count(head in any::<String>(), tail in any::<String>()) {
            let whole = format!("{head}{tail}");
            prop_assert!(analyse(&head).segments <= analyse(&whole).segments);
        }

        #[test]
        fn gsm7_text_of_at_most_160_septets_is_one_sms(chars in proptest::collection::vec(gsm7_char(), 1..160)) {
            let text: String = chars.into_iter().collect();
            let s = analyse(&text);
            prop_assert_eq!(s.encoding, SmsEncoding::Gsm7);
            prop_assert_eq!(s.segments == 1, s.units <= 160);
        }

        #[test]
        fn segments_are_full_but_for_at_most_one_unit(chars in proptest::collection::vec(gsm7_char(), 1..1000)) {
            // A segment gives up at most its last septet to keep an escape pair whole.
            let s = analyse(&chars.into_iter().collect::<String>());
            if s.units > 160 {
                prop_assert!(s.segments >= s.units.div_ceil(153));
                prop_assert!(s.segments <= s.units.div_ceil(152));
            }
        }

        #[test]
        fn units_are_the_utf16_length_of_ucs2_text(text in any::<String>()) {
            let s = analyse(&text);
            prop_assert_eq!(s.characters, text.chars().count());
            match s.encoding {
                SmsEncoding::Ucs2 => prop_assert_eq!(s.units, text.encode_utf16().count()),
                SmsEncoding::Gsm7 => prop_assert!(s.units >= s.characters && s.units <= 2 * s.characters),
            }
        }
    }
}
