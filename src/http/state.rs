use std::sync::Arc;

use hejnal_jobs::Queue;

use super::ratelimit::PublicLimiter;
use crate::{config::Config, pages::Pages, residents::SharedResidents, store::DynStore};

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub store: DynStore,
    pub queue: Queue,
    pub residents: SharedResidents,
    pub pages: Arc<Pages>,
    pub limiter: PublicLimiter,
    /// Consultation comments, per address (`HEJNAL_COMMENT_RATE_PER_HOUR`).
    pub comment_limiter: PublicLimiter,
}
