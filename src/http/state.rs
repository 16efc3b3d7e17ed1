use std::sync::Arc;

use hejnal_jobs::Queue;

use crate::{config::Config, store::DynStore};

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub store: DynStore,
    pub queue: Queue,
}
