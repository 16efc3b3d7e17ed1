//! The body of an RFC 8058 one-click unsubscribe. A mail client that honours our
//! `List-Unsubscribe-Post: List-Unsubscribe=One-Click` header POSTs the field
//! `List-Unsubscribe=One-Click`, as `multipart/form-data` or as
//! `application/x-www-form-urlencoded` (the RFC allows both). Without it, the POST is not a
//! one-click unsubscribe, and changes nothing.

const FIELD: &str = "List-Unsubscribe";
const VALUE: &str = "One-Click";

/// Whether a body of this content type carries `List-Unsubscribe=One-Click`. A body that is
/// not multipart is read as a form, whatever its declared type.
pub fn asks_one_click(content_type: Option<&str>, body: &[u8]) -> bool {
    match content_type.and_then(multipart_boundary) {
        Some(boundary) => multipart_has_one_click(body, &boundary),
        None => url::form_urlencoded::parse(body).any(|(name, value)| name == FIELD && value == VALUE),
    }
}

/// The boundary of a `multipart/form-data` content type.
fn multipart_boundary(content_type: &str) -> Option<String> {
    let (mime, params) = content_type.split_once(';')?;
    if !mime.trim().eq_ignore_ascii_case("multipart/form-data") {
        return None;
    }
    parameter(params, "boundary")
}

/// The value of parameter `name` among `; name=value` pairs, without its quotes.
fn parameter(params: &str, name: &str) -> Option<String> {
    params.split(';').find_map(|param| {
        let (key, value) = param.split_once('=')?;
        key.trim().eq_ignore_ascii_case(name).then(|| value.trim().trim_matches('"').to_owned())
    })
}

fn multipart_has_one_click(body: &[u8], boundary: &str) -> bool {
    let Ok(body) = std::str::from_utf8(body) else { return false };
    body.split(&format!("--{boundary}")).any(|part| {
        let Some((headers, value)) = part.split_once("\r\n\r\n") else { return false };
        names_the_field(headers) && value.trim() == VALUE
    })
}

/// Whether a part's headers say `Content-Disposition: form-data; name="List-Unsubscribe"`.
fn names_the_field(headers: &str) -> bool {
    headers.lines().any(|line| {
        let Some((header, value)) = line.split_once(':') else { return false };
        let params = value.split_once(';').map_or("", |(_, params)| params);
        header.trim().eq_ignore_ascii_case("content-disposition") && parameter(params, "name").as_deref() == Some(FIELD)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const FORM: Option<&str> = Some("application/x-www-form-urlencoded");

    fn multipart(name: &str, value: &str) -> Vec<u8> {
        format!("--b0undary\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n--b0undary--\r\n").into_bytes()
    }

    #[test]
    fn the_form_field_is_one_click() {
        assert!(asks_one_click(FORM, b"List-Unsubscribe=One-Click"));
        assert!(asks_one_click(None, b"List-Unsubscribe=One-Click"), "a body without a type is read as a form");
        assert!(asks_one_click(FORM, b"other=1&List-Unsubscribe=One-Click"));
    }

    #[test]
    fn anything_else_is_not() {
        for body in [&b""[..], b"List-Unsubscribe=Yes", b"list-unsubscribe=one-click", b"List-Unsubscribe-Post=One-Click"] {
            assert!(!asks_one_click(FORM, body), "{}", String::from_utf8_lossy(body));
        }
    }

    #[test]
    fn a_multipart_form_with_the_field_is_one_click() {
        let form = Some("multipart/form-data; boundary=\"b0undary\"");
        assert!(asks_one_click(form, &multipart("List-Unsubscribe", "One-Click")));
        assert!(asks_one_click(Some("Multipart/Form-Data; boundary=b0undary"), &multipart("List-Unsubscribe", "One-Click")));
        assert!(!asks_one_click(form, &multipart("List-Unsubscribe-Post", "One-Click")));
        assert!(!asks_one_click(form, &multipart("List-Unsubscribe", "No")));
        assert!(!asks_one_click(Some("multipart/form-data; boundary=other"), &multipart("List-Unsubscribe", "One-Click")));
    }
}
