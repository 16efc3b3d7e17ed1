//! Reference data residents choose from: districts and interests.

use axum::{Json, extract::State};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{AppState, error::ApiError};
use crate::store::{District, Interest};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(districts)).routes(routes!(interests))
}

/// Kraków's 18 districts, in official order, named in Polish, English and Ukrainian.
#[utoipa::path(get, path = "/api/v1/districts", tag = "reference",
    responses((status = 200, body = [District])))]
async fn districts(State(state): State<AppState>) -> Result<Json<Vec<District>>, ApiError> {
    Ok(Json(state.store.districts().await?))
}

/// The topics residents can follow.
#[utoipa::path(get, path = "/api/v1/interests", tag = "reference",
    responses((status = 200, body = [Interest])))]
async fn interests(State(state): State<AppState>) -> Result<Json<Vec<Interest>>, ApiError> {
    Ok(Json(state.store.interests().await?))
}
