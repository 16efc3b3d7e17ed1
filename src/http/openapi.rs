//! The OpenAPI document at `/api/v1/openapi.json`. Each handler declares its own answers; this
//! module adds the ones every handler of a kind can give, so the document stays truthful
//! without repeating them on each route: the error shape on every error, 400/415/422 where a
//! body or parameter is parsed, 401 where a token is needed, 429 on the rate-limited public
//! routes, 503 when the database does not answer. Schemathesis checks the result
//! (`tests/schemathesis.rs`).

use std::collections::{BTreeMap, BTreeSet};

use utoipa::{
    OpenApi,
    openapi::{
        Content, Header, OpenApi as Document, Ref, RefOr, Response,
        path::{Operation, ParameterIn},
        schema::{ObjectBuilder, Schema, Type},
        security::{Http, HttpAuthScheme, SecurityScheme},
    },
};

use super::error::{ErrorBody, ErrorEnvelope, FieldError};

#[derive(OpenApi)]
#[openapi(
    info(title = "Hejnał", description = "Notifications and surveys of a city contact centre"),
    components(schemas(ErrorEnvelope, ErrorBody, FieldError))
)]
pub struct ApiDoc;

/// Complete `doc`; `public` lists the paths behind the per-address rate limit.
pub fn finish(mut doc: Document, public: &BTreeSet<String>) -> Document {
    add_security_schemes(&mut doc);
    open_flattened_schemas(&mut doc);
    for (path, item) in doc.paths.paths.iter_mut() {
        let rate_limited = public.contains(path);
        let operations = [&mut item.get, &mut item.put, &mut item.post, &mut item.delete, &mut item.patch];
        for operation in operations.into_iter().flatten() {
            add_common_answers(operation, path, rate_limited);
        }
    }
    doc
}

/// `bearer`: an official's token (`hejnal tokens create`); `provider`: the SMS provider's
/// shared secret (`HEJNAL_SMS_INBOUND_SECRET`).
fn add_security_schemes(doc: &mut Document) {
    let components = doc.components.get_or_insert_with(Default::default);
    let mut official = Http::new(HttpAuthScheme::Bearer);
    official.description = Some("An official's API token, from `hejnal tokens create`".into());
    components.add_security_scheme("bearer", SecurityScheme::Http(official));
    let mut provider = Http::new(HttpAuthScheme::Bearer);
    provider.description = Some("The SMS provider's shared secret, `HEJNAL_SMS_INBOUND_SECRET`".into());
    components.add_security_scheme("provider", SecurityScheme::Http(provider));
}

/// A request type that refuses unknown fields (`additionalProperties: false`) and is
/// `#[serde(flatten)]`ed into an answer (`NoticeSpec` in `NoticeView`) would make the answer's
/// `allOf` impossible: its other fields are unknown to the closed part. The answer refers to
/// an open copy, `<Name>Fields`, instead. (Found by schemathesis.)
fn open_flattened_schemas(doc: &mut Document) {
    let Some(components) = doc.components.as_mut() else { return };
    let closed: BTreeSet<String> = components
        .schemas
        .iter()
        .filter_map(|(name, schema)| match schema {
            RefOr::T(Schema::Object(object)) if object.additional_properties.is_some() => Some(name.clone()),
            _ => None,
        })
        .collect();
    let mut opened = BTreeSet::new();
    for schema in components.schemas.values_mut() {
        let RefOr::T(Schema::AllOf(all_of)) = schema else { continue };
        for item in all_of.items.iter_mut() {
            let RefOr::Ref(reference) = item else { continue };
            let Some(name) = reference.ref_location.strip_prefix("#/components/schemas/").map(str::to_owned) else { continue };
            if closed.contains(&name) {
                *item = RefOr::Ref(Ref::from_schema_name(format!("{name}Fields")));
                opened.insert(name);
            }
        }
    }
    for name in opened {
        if let Some(RefOr::T(Schema::Object(object))) = components.schemas.get(&name) {
            let mut open = object.clone();
            open.additional_properties = None;
            components.schemas.insert(format!("{name}Fields"), RefOr::T(Schema::Object(open)));
        }
    }
}

fn add_common_answers(operation: &mut Operation, path: &str, rate_limited: bool) {
    let responses = &mut operation.responses.responses;
    // Every error a handler declares without a body has the one error shape.
    for (status, response) in responses.iter_mut() {
        if let RefOr::T(response) = response
            && status.as_str() >= "400" && response.content.is_empty()
        {
            response.content.insert("application/json".into(), RefOr::T(error_content()));
        }
    }
    let add = |responses: &mut BTreeMap<String, RefOr<Response>>, status: &str, description: &str| {
        responses.entry(status.into()).or_insert_with(|| RefOr::T(error_response(description)));
    };
    let json_body = operation
        .request_body
        .as_ref()
        .is_some_and(|b| matches!(b, RefOr::T(b) if b.content.contains_key("application/json")));
    if json_body {
        add(responses, "400", "The body is not JSON");
        add(responses, "415", "The body is not sent as `application/json`");
        add(responses, "422", "A field is wrong: `field` or `details` name it and say why");
    }
    let places: Vec<&ParameterIn> = operation.parameters.iter().flatten().filter_map(|p| if let RefOr::T(p) = p { Some(&p.parameter_in) } else { None }).collect();
    if places.iter().any(|i| matches!(i, ParameterIn::Path | ParameterIn::Query)) {
        add(responses, "400", "A path or query parameter cannot be read (`invalid_path`, `invalid_query`)");
    }
    if places.iter().any(|i| matches!(i, ParameterIn::Header)) {
        add(responses, "422", "A header is wrong: `field` names it and says why");
    }
    if operation.security.as_ref().is_some_and(|s| !s.is_empty()) {
        add(responses, "401", "No token, or a token that is unknown, expired or revoked");
    }
    if rate_limited {
        add(responses, "429", "Too many requests from this address");
        say_retry_after(responses.get_mut("429"));
    }
    if path != "/healthz" {
        add(responses, "503", "The database does not answer; try again shortly");
        say_retry_after(responses.get_mut("503"));
    }
}

fn error_content() -> Content {
    Content::new(Some(Ref::from_schema_name("ErrorEnvelope")))
}

fn error_response(description: &str) -> Response {
    let mut response = Response::new(description);
    response.content.insert("application/json".into(), RefOr::T(error_content()));
    response
}

fn say_retry_after(response: Option<&mut RefOr<Response>>) {
    if let Some(RefOr::T(response)) = response {
        let mut header = Header::new(ObjectBuilder::new().schema_type(Type::Integer));
        header.description = Some("Seconds to wait before trying again".into());
        response.headers.insert("Retry-After".into(), RefOr::T(header));
    }
}

/// The paths of `doc`, to tell which routes a layer covers.
pub fn paths(doc: &Document) -> BTreeSet<String> {
    doc.paths.paths.keys().cloned().collect()
}
