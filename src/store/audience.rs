//! The audience estimate as one scan of `subscribers`, using its bitmasks (migration 0004):
//! filter on the masks and group by (language, district mask, verified mask), which leaves a
//! few hundred groups for a million residents; `fold` expands them into the counts. Joins over
//! a million residents cost seconds on two cores; this costs one pass.

use super::residents_types::{AudienceCounts, AudienceQuery};

/// The bits an audience is made of. Districts and interests are numbered by their seed
/// `position` (1, 2, …, contiguous), bit `position - 1`.
#[derive(Debug, Clone)]
pub struct Masks {
    /// Each requested district with its bit.
    pub districts: Vec<(String, i64)>,
    pub district_any: i64,
    /// 0 when interests do not narrow the audience.
    pub interest_any: i64,
    /// Each requested channel with its bit (email 1, sms 2, push 4).
    pub channels: Vec<(String, i64)>,
    pub channel_any: i64,
}

impl Masks {
    /// `all_districts` and `all_interests` are in position order, as the store lists them.
    pub fn new(q: &AudienceQuery, all_districts: &[String], all_interests: &[String]) -> Masks {
        let bit = |all: &[String], slug: &str| all.iter().position(|s| s == slug).map(|i| 1i64 << i).unwrap_or(0);
        let districts: Vec<(String, i64)> = q.districts.iter().map(|d| (d.clone(), bit(all_districts, d))).collect();
        let interest_any = if q.all_interests || q.interests.is_empty() {
            0
        } else {
            q.interests.iter().map(|i| bit(all_interests, i)).fold(0, |a, b| a | b)
        };
        let channels: Vec<(String, i64)> = q.channels.iter().map(|c| (c.clone(), channel_bit(c))).collect();
        Masks {
            district_any: districts.iter().fold(0, |a, (_, b)| a | b),
            channel_any: channels.iter().fold(0, |a, (_, b)| a | b),
            districts,
            interest_any,
            channels,
        }
    }
}

pub fn channel_bit(channel: &str) -> i64 {
    match channel {
        "email" => 1,
        "sms" => 2,
        _ => 4,
    }
}

/// Expand `(language, district_mask, verified_mask, residents)` groups into the counts.
pub fn fold(groups: Vec<(String, i64, i64, i64)>, masks: &Masks) -> AudienceCounts {
    use std::collections::BTreeMap;
    let mut by_channel_language: BTreeMap<(String, String), i64> = BTreeMap::new();
    let mut per_district = vec![0i64; masks.districts.len()];
    let mut subscribers = 0;
    for (language, district_mask, verified_mask, n) in groups {
        subscribers += n;
        let mut reached = 0;
        for (channel, bit) in &masks.channels {
            if verified_mask & bit != 0 {
                *by_channel_language.entry((channel.clone(), language.clone())).or_default() += n;
                reached += n;
            }
        }
        for (i, (_, bit)) in masks.districts.iter().enumerate() {
            if district_mask & bit != 0 {
                per_district[i] += reached;
            }
        }
    }
    AudienceCounts {
        by_channel_language: by_channel_language.into_iter().map(|((c, l), n)| (c, l, n)).collect(),
        by_district: masks.districts.iter().zip(per_district).filter(|(_, n)| *n > 0).map(|((d, _), n)| (d.clone(), n)).collect(),
        subscribers,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_expand_into_channel_language_and_district_counts() {
        let q = AudienceQuery {
            districts: vec!["a".into(), "b".into()],
            interests: vec![],
            all_interests: false,
            channels: vec!["email".into(), "sms".into()],
            languages: vec!["pl".into(), "en".into()],
        };
        let masks = Masks::new(&q, &["a".into(), "b".into(), "c".into()], &[]);
        // 10 residents in a with email+sms (pl), 5 in a and b with email only (en).
        let counts = fold(vec![("pl".into(), 0b001, 0b011, 10), ("en".into(), 0b011, 0b001, 5)], &masks);
        assert_eq!(counts.subscribers, 15);
        assert_eq!(
            counts.by_channel_language,
            vec![("email".into(), "en".into(), 5), ("email".into(), "pl".into(), 10), ("sms".into(), "pl".into(), 10)]
        );
        assert_eq!(counts.by_district, vec![("a".into(), 25), ("b".into(), 5)]);
    }
}
