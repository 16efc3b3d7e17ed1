//! Request ids: a random (version 4) UUID per request, as tower-http's `MakeRequestUuid` makes
//! them, but drawn from the thread's own generator (rand's, seeded from the operating system)
//! instead of a `getrandom` system call per request: one system call fewer on every answer
//! (`docs/performance.md`, session 15's count). The ids only tie log lines together; nothing
//! trusts them.

use axum::http::{HeaderValue, Request};
use rand::Rng;
use tower_http::request_id::{MakeRequestId, RequestId};
use uuid::Uuid;

#[derive(Clone, Copy, Default)]
pub(super) struct MakeRandomRequestId;

impl MakeRequestId for MakeRandomRequestId {
    fn make_request_id<B>(&mut self, _: &Request<B>) -> Option<RequestId> {
        Some(RequestId::new(fresh_id()))
    }
}

fn fresh_id() -> HeaderValue {
    let id = uuid::Builder::from_random_bytes(rand::thread_rng().r#gen()).into_uuid();
    let mut text = Uuid::encode_buffer();
    HeaderValue::from_str(id.hyphenated().encode_lower(&mut text)).expect("a UUID's text is a valid header value")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_request_gets_a_different_version_4_uuid() {
        let ids: Vec<Uuid> = (0..1_000).map(|_| fresh_id().to_str().unwrap().parse().unwrap()).collect();
        assert!(ids.iter().all(|id| id.get_version_num() == 4 && id.get_variant() == uuid::Variant::RFC4122));
        let distinct: std::collections::HashSet<_> = ids.iter().collect();
        assert_eq!(distinct.len(), ids.len());
    }
}
