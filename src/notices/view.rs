//! What the API shows of a notice: its request, where it is in its life, who cleared it,
//! and its deliveries counted per channel and status.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::spec::NoticeSpec;
use crate::store::{DynStore, NoticeRow, StoreResult};

/// Every status a delivery can have, in the order of its life.
pub const DELIVERY_STATUSES: [&str; 7] = ["queued", "sending", "sent", "delivered", "failed", "expired", "cancelled"];

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct NoticeView {
    pub id: i64,
    /// draft, pending, scheduled, published, rejected or cancelled.
    pub state: String,
    /// emergency or routine: the queue lane its deliveries travel in.
    pub lane: String,
    #[serde(flatten)]
    pub spec: NoticeSpec,
    pub author_id: i64,
    pub approver_id: Option<i64>,
    /// How it was cleared: second_official, not_required, correction or break_glass.
    pub approval: Option<String>,
    /// The pre-approved template it came from (break glass).
    pub template_id: Option<i64>,
    pub reject_reason: Option<String>,
    pub created_at: Option<DateTime<Utc>>,
    pub submitted_at: Option<DateTime<Utc>>,
    pub approved_at: Option<DateTime<Utc>>,
    pub published_at: Option<DateTime<Utc>>,
    pub cancelled_at: Option<DateTime<Utc>>,
    pub fanout: Fanout,
    /// Per channel, per status: how many deliveries.
    pub progress: BTreeMap<String, BTreeMap<String, i64>>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Fanout {
    /// Deliveries created; null until the fan-out is done.
    pub recipients: Option<i64>,
    pub done_at: Option<DateTime<Utc>>,
}

impl NoticeView {
    pub fn new(row: NoticeRow, counts: Vec<(String, String, i64)>) -> Result<NoticeView, serde_json::Error> {
        let spec: NoticeSpec = serde_json::from_str(&row.spec)?;
        let channels: Vec<String> = match &spec.audience {
            Some(a) => a.channels.clone(),
            None => counts.iter().map(|(c, _, _)| c.clone()).collect(),
        };
        let mut progress: BTreeMap<String, BTreeMap<String, i64>> = channels
            .into_iter()
            .map(|c| (c, DELIVERY_STATUSES.iter().map(|s| (s.to_string(), 0)).collect()))
            .collect();
        for (channel, status, n) in counts {
            *progress.entry(channel).or_default().entry(status).or_default() += n;
        }
        Ok(NoticeView {
            id: row.id,
            state: row.state,
            lane: row.lane,
            spec,
            author_id: row.author_id,
            approver_id: row.approver_id,
            approval: row.approval,
            template_id: row.template_id,
            reject_reason: row.reject_reason,
            created_at: time(Some(row.created_at)),
            submitted_at: time(row.submitted_at),
            approved_at: time(row.approved_at),
            published_at: time(row.published_at),
            cancelled_at: time(row.cancelled_at),
            fanout: Fanout { recipients: row.recipients, done_at: time(row.fanout_done_at) },
            progress,
        })
    }

    /// True when nothing more will happen to its deliveries without a receipt.
    pub fn settled(&self) -> bool {
        let waiting = self.progress.values().flat_map(|m| ["queued", "sending"].map(|s| m.get(s).copied().unwrap_or(0))).sum::<i64>();
        match self.state.as_str() {
            "published" => self.fanout.done_at.is_some() && waiting == 0,
            "cancelled" | "rejected" => waiting == 0,
            _ => false,
        }
    }
}

/// The view of a notice with its live counts.
pub async fn load(store: &DynStore, row: NoticeRow) -> StoreResult<Result<NoticeView, serde_json::Error>> {
    let counts = store.notice_progress(row.id).await?;
    Ok(NoticeView::new(row, counts))
}

fn time(ms: Option<i64>) -> Option<DateTime<Utc>> {
    ms.and_then(DateTime::from_timestamp_millis)
}
