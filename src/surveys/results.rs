//! Results, live: one pass over a survey's responses (in pages, never all in memory at once)
//! counting per option, scale value and rank, each split into answers by invitation and open
//! answers; response rates from the invitations' districts and channels (kept at invitation
//! time, so no contact data is read). CSV for spreadsheets, escaped against formula injection.

use serde::Serialize;
use serde_json::{Map, Value};

use super::spec::{QuestionType, SurveySpec, local};
use crate::{
    store::{DynStore, District, ResponseRow, StoreResult, SurveyRow, audience::channel_bit},
};

/// Counts by where the answers came from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Split {
    pub invitation: i64,
    pub open: i64,
    pub total: i64,
}

impl Split {
    fn add(&mut self, invited: bool, n: i64) {
        if invited { self.invitation += n } else { self.open += n }
        self.total += n;
    }
}

/// Means by where the answers came from; null where nobody answered.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Means {
    pub invitation: Option<f64>,
    pub open: Option<f64>,
    pub total: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Count {
    /// The option number, the scale value, or `yes`/`no`.
    #[schema(value_type = Object)]
    pub value: Value,
    /// The option's Polish text, or the value.
    pub label: String,
    #[serde(flatten)]
    pub count: Split,
}

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Rank {
    pub option: i64,
    pub label: String,
    /// The average place given (1 = first).
    pub mean_position: Means,
    /// How often it was put first.
    pub first: Split,
}

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct QuestionResult {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: QuestionType,
    pub text: String,
    pub answered: Split,
    /// Choices and yes/no: how often each was chosen.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<Count>,
    /// Scales: how often each value was given.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub distribution: Vec<Count>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mean: Option<Means>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ranking: Vec<Rank>,
}

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Rate {
    /// A district's slug or a channel.
    pub key: String,
    pub label: String,
    pub invited: i64,
    pub answered: i64,
    /// answered / invited.
    pub rate: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Reach {
    pub invited: i64,
    pub answered: i64,
    pub rate: f64,
    /// A resident of several invited districts counts in each; one invited over several
    /// channels counts in each.
    pub by_district: Vec<Rate>,
    pub by_channel: Vec<Rate>,
}

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Responses {
    pub invitation: i64,
    pub open: i64,
    /// Open answers that share a client address with another open answer to this survey.
    pub open_flagged: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Results {
    pub survey_id: i64,
    pub state: String,
    pub accepting_answers: bool,
    pub responses: Responses,
    pub invitations: Reach,
    pub questions: Vec<QuestionResult>,
}

const PAGE: i64 = 5000;

/// Every response of a survey, a page at a time.
pub async fn each_response(store: &DynStore, survey_id: i64, mut f: impl FnMut(&ResponseRow, &Map<String, Value>)) -> StoreResult<()> {
    let mut after = 0;
    loop {
        let page = store.responses(survey_id, after, PAGE).await?;
        for r in &page {
            // Stored answers were checked on the way in; an unreadable one counts as empty.
            let answers = serde_json::from_str::<Map<String, Value>>(&r.answers).unwrap_or_default();
            f(r, &answers);
        }
        match page.last() {
            Some(last) if page.len() as i64 == PAGE => after = last.id,
            _ => return Ok(()),
        }
    }
}

pub async fn compute(store: &DynStore, row: &SurveyRow, spec: &SurveySpec) -> StoreResult<Results> {
    let mut tallies: Vec<Tally> = spec.questions.iter().map(Tally::new).collect();
    let mut responses = Responses { invitation: 0, open: 0, open_flagged: 0 };
    each_response(store, row.id, |r, answers| {
        let invited = r.invitation_id.is_some();
        if invited {
            responses.invitation += 1;
        } else {
            responses.open += 1;
            responses.open_flagged += i64::from(r.same_address > 0);
        }
        for (q, t) in spec.questions.iter().zip(tallies.iter_mut()) {
            if let Some(v) = answers.get(q.id()) {
                t.add(q.kind, v, invited);
            }
        }
    })
    .await?;
    let questions = spec.questions.iter().zip(tallies).map(|(q, t)| t.finish(q)).collect();
    Ok(Results {
        survey_id: row.id,
        state: row.state.clone(),
        accepting_answers: super::service::accepting(row, crate::store::now_ms()).is_ok(),
        responses,
        invitations: reach(store, row.id).await?,
        questions,
    })
}

/// Per question: counts by slot (option, yes/no, scale value), split by source.
struct Tally {
    answered: Split,
    slots: Vec<Split>,
    sums: [f64; 2],
    /// Rankings: the sum of places per option, by source.
    places: Vec<[f64; 2]>,
    lowest: i64,
}

impl Tally {
    fn new(q: &super::spec::Question) -> Tally {
        let (lowest, slots) = match q.kind {
            QuestionType::SingleChoice | QuestionType::MultipleChoice | QuestionType::Ranking => (1, q.options.len()),
            QuestionType::YesNo => (0, 2),
            QuestionType::Scale => {
                let (lo, hi) = q.scale_bounds();
                (lo, (hi - lo + 1) as usize)
            }
            QuestionType::ShortText | QuestionType::LongText => (0, 0),
        };
        Tally { answered: Split::default(), slots: vec![Split::default(); slots], sums: [0.0; 2], places: vec![[0.0; 2]; slots], lowest }
    }

    fn slot(&mut self, n: i64) -> Option<&mut Split> {
        usize::try_from(n - self.lowest).ok().and_then(|i| self.slots.get_mut(i))
    }

    fn add(&mut self, kind: QuestionType, v: &Value, invited: bool) {
        self.answered.add(invited, 1);
        let source = usize::from(!invited);
        match kind {
            QuestionType::SingleChoice => self.count(v.as_i64(), invited),
            QuestionType::MultipleChoice => v.as_array().into_iter().flatten().for_each(|o| self.count(o.as_i64(), invited)),
            QuestionType::YesNo => self.count(v.as_bool().map(|yes| if yes { 0 } else { 1 }), invited),
            QuestionType::Scale => {
                self.count(v.as_i64(), invited);
                self.sums[source] += v.as_f64().unwrap_or_default();
            }
            QuestionType::Ranking => {
                for (place, option) in v.as_array().into_iter().flatten().enumerate() {
                    let Some(option) = option.as_i64() else { continue };
                    if place == 0 {
                        self.count(Some(option), invited);
                    }
                    if let Some(p) = usize::try_from(option - 1).ok().and_then(|i| self.places.get_mut(i)) {
                        p[source] += place as f64 + 1.0;
                    }
                }
            }
            QuestionType::ShortText | QuestionType::LongText => {}
        }
    }

    fn count(&mut self, slot: Option<i64>, invited: bool) {
        if let Some(s) = slot.and_then(|n| self.slot(n)) {
            s.add(invited, 1);
        }
    }

    fn finish(self, q: &super::spec::Question) -> QuestionResult {
        let option_label = |i: usize| local(&q.options[i], "pl").to_owned();
        let means = |sums: [f64; 2], n: Split| Means {
            invitation: mean(sums[0], n.invitation),
            open: mean(sums[1], n.open),
            total: mean(sums[0] + sums[1], n.total),
        };
        let mut r = QuestionResult {
            id: q.id().to_owned(),
            kind: q.kind,
            text: local(&q.text, "pl").to_owned(),
            answered: self.answered,
            options: vec![],
            distribution: vec![],
            mean: None,
            ranking: vec![],
        };
        match q.kind {
            QuestionType::SingleChoice | QuestionType::MultipleChoice => {
                r.options = self.slots.iter().enumerate().map(|(i, c)| Count { value: (i as i64 + 1).into(), label: option_label(i), count: *c }).collect();
            }
            QuestionType::YesNo => {
                r.options = ["yes", "no"].iter().zip(&self.slots).map(|(v, c)| Count { value: (*v).into(), label: (*v).into(), count: *c }).collect();
            }
            QuestionType::Scale => {
                r.distribution = self.slots.iter().enumerate().map(|(i, c)| {
                    let v = self.lowest + i as i64;
                    Count { value: v.into(), label: v.to_string(), count: *c }
                }).collect();
                r.mean = Some(means(self.sums, self.answered));
            }
            QuestionType::Ranking => {
                r.ranking = self.places.iter().enumerate().map(|(i, p)| Rank {
                    option: i as i64 + 1,
                    label: option_label(i),
                    mean_position: means(*p, self.answered),
                    first: self.slots[i],
                }).collect();
            }
            QuestionType::ShortText | QuestionType::LongText => {}
        }
        r
    }
}

/// Rounded to two decimals; None for no answers.
fn mean(sum: f64, n: i64) -> Option<f64> {
    (n > 0).then(|| (sum / n as f64 * 100.0).round() / 100.0)
}

fn rate(answered: i64, invited: i64) -> f64 {
    if invited == 0 { 0.0 } else { (answered as f64 / invited as f64 * 10_000.0).round() / 10_000.0 }
}

async fn reach(store: &DynStore, survey_id: i64) -> StoreResult<Reach> {
    let groups = store.invitation_groups(survey_id).await?;
    let districts = store.districts().await?;
    let (mut invited, mut answered) = (0, 0);
    let mut by_district: Vec<(i64, i64)> = vec![(0, 0); districts.len()];
    let channels = ["email", "sms", "push"];
    let mut by_channel = [(0i64, 0i64); 3];
    for g in &groups {
        invited += g.count;
        answered += if g.answered { g.count } else { 0 };
        let add = |slot: &mut (i64, i64)| {
            slot.0 += g.count;
            slot.1 += if g.answered { g.count } else { 0 };
        };
        for (i, slot) in by_district.iter_mut().enumerate() {
            if g.district_mask & (1 << i) != 0 {
                add(slot);
            }
        }
        for (c, slot) in channels.iter().zip(by_channel.iter_mut()) {
            if g.channel_mask & channel_bit(c) != 0 {
                add(slot);
            }
        }
    }
    let row = |key: &str, label: &str, (inv, ans): (i64, i64)| Rate { key: key.into(), label: label.into(), invited: inv, answered: ans, rate: rate(ans, inv) };
    Ok(Reach {
        invited,
        answered,
        rate: rate(answered, invited),
        by_district: districts.iter().zip(by_district).filter(|(_, c)| c.0 > 0).map(|(d, c): (&District, _)| row(&d.slug, &d.name_pl, c)).collect(),
        by_channel: channels.iter().zip(by_channel).filter(|(_, c)| c.0 > 0).map(|(ch, c)| row(ch, ch, c)).collect(),
    })
}

/// A free-text answer, for analysts.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct TextAnswer {
    pub response_id: i64,
    pub question: String,
    /// `invitation` or `open`.
    pub source: &'static str,
    pub text: String,
    /// An open answer sharing its client address with other open answers (possible stuffing).
    pub flagged: bool,
    pub updated_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// Every text answer of the survey, or of one question.
pub async fn text_answers(store: &DynStore, survey_id: i64, spec: &SurveySpec, only: Option<&str>) -> StoreResult<Vec<TextAnswer>> {
    let texts: Vec<&str> = spec.questions.iter().filter(|q| q.kind.is_text() && only.is_none_or(|o| o == q.id())).map(|q| q.id()).collect();
    let mut out = Vec::new();
    each_response(store, survey_id, |r, answers| {
        for id in &texts {
            if let Some(text) = answers.get(*id).and_then(Value::as_str) {
                out.push(TextAnswer {
                    response_id: r.id,
                    question: (*id).to_owned(),
                    source: if r.invitation_id.is_some() { "invitation" } else { "open" },
                    text: text.to_owned(),
                    flagged: r.invitation_id.is_none() && r.same_address > 0,
                    updated_at: chrono::DateTime::from_timestamp_millis(r.updated_at),
                });
            }
        }
    })
    .await?;
    Ok(out)
}

/// The results as CSV: UTF-8 with a BOM (so spreadsheets read Polish letters), separated by
/// `sep`. With `;` (Polish spreadsheets) decimals take a comma. Text cells that a spreadsheet
/// would run as a formula (starting with = + - @, tab or CR) are prefixed with `'`.
pub fn to_csv(r: &Results, sep: u8) -> String {
    let decimal = |x: f64| if sep == b';' { x.to_string().replace('.', ",") } else { x.to_string() };
    let opt = |x: Option<f64>| x.map(decimal).unwrap_or_default();
    let mut w = csv::WriterBuilder::new().delimiter(sep).from_writer(Vec::new());
    let mut row = |cells: [String; 9]| {
        let _ = w.write_record(cells.iter().enumerate().map(|(i, c)| if i < 4 { defuse(c) } else { c.clone() }));
    };
    let s = |x: &str| x.to_owned();
    row(["section", "question_id", "question", "item", "invited", "invitation", "open", "total", "rate"].map(s));
    row([s("responses"), s(""), s(""), s("all"), s(""), r.responses.invitation.to_string(), r.responses.open.to_string(),
        (r.responses.invitation + r.responses.open).to_string(), s("")]);
    row([s("responses"), s(""), s(""), s("open_flagged"), s(""), s(""), r.responses.open_flagged.to_string(), s(""), s("")]);
    let inv = &r.invitations;
    row([s("invitations"), s(""), s(""), s("all"), inv.invited.to_string(), inv.answered.to_string(), s(""), s(""), decimal(inv.rate)]);
    for (section, rates) in [("district", &inv.by_district), ("channel", &inv.by_channel)] {
        for x in rates {
            row([s(section), s(""), s(""), x.label.clone(), x.invited.to_string(), x.answered.to_string(), s(""), s(""), decimal(x.rate)]);
        }
    }
    for q in &r.questions {
        let counts = |section: &str, c: &Count| [s(section), q.id.clone(), q.text.clone(), c.label.clone(), s(""),
            c.count.invitation.to_string(), c.count.open.to_string(), c.count.total.to_string(), s("")];
        row([s("answered"), q.id.clone(), q.text.clone(), s(""), s(""), q.answered.invitation.to_string(), q.answered.open.to_string(), q.answered.total.to_string(), s("")]);
        q.options.iter().for_each(|c| row(counts("option", c)));
        q.distribution.iter().for_each(|c| row(counts("scale", c)));
        if let Some(m) = q.mean {
            row([s("mean"), q.id.clone(), q.text.clone(), s(""), s(""), opt(m.invitation), opt(m.open), opt(m.total), s("")]);
        }
        for k in &q.ranking {
            let m = k.mean_position;
            row([s("mean_position"), q.id.clone(), q.text.clone(), k.label.clone(), s(""), opt(m.invitation), opt(m.open), opt(m.total), s("")]);
        }
    }
    let body = w.into_inner().unwrap_or_default();
    format!("\u{feff}{}", String::from_utf8_lossy(&body))
}

/// A cell a spreadsheet would take for a formula, made plain text.
pub fn defuse(cell: &str) -> String {
    if cell.starts_with(['=', '+', '-', '@', '\t', '\r']) { format!("'{cell}") } else { cell.to_owned() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formula_cells_are_defused_and_others_kept() {
        for (cell, out) in [("=HYPERLINK(\"x\")", "'=HYPERLINK(\"x\")"), ("+48", "'+48"), ("-1", "'-1"), ("@SUM", "'@SUM"), ("\tx", "'\tx"), ("\rx", "'\rx"), ("Ławki", "Ławki")] {
            assert_eq!(defuse(cell), out);
        }
    }

    #[test]
    fn means_are_rounded_and_absent_without_answers() {
        assert_eq!(mean(9.0, 2), Some(4.5));
        assert_eq!(mean(10.0, 3), Some(3.33));
        assert_eq!(mean(0.0, 0), None);
    }
}
