//! Message rendering with handlebars, in strict mode (a missing variable is an error, not an
//! empty string). Templates live in `templates/messages/{channel}/{name}.{lang}.hbs` and are
//! embedded in the binary. HTML templates (`*.html`) escape; text, SMS and push do not, since
//! their readers are not browsers. Each resident's language falls back to Polish.
//!
//! SMS verification texts avoid Polish letters on purpose: one such letter switches the
//! message to UCS-2 and 70 characters per segment. The preferences link still makes them two
//! GSM-7 segments.

mod embedded;

use handlebars::Handlebars;
use serde::Serialize;

use crate::domain::Language;

pub struct Messages {
    html: Handlebars<'static>,
    text: Handlebars<'static>,
}

impl Messages {
    pub fn new() -> Messages {
        let mut html = Handlebars::new();
        let mut text = Handlebars::new();
        html.set_strict_mode(true);
        text.set_strict_mode(true);
        text.register_escape_fn(handlebars::no_escape);
        for (name, source) in embedded::TEMPLATES {
            let registry = if name.contains(".html.") { &mut html } else { &mut text };
            registry.register_template_string(name, *source).unwrap_or_else(|e| panic!("template {name}: {e}"));
        }
        Messages { html, text }
    }

    /// Render `name` (e.g. `email/verify.subject`) in `lang`, or in Polish when that
    /// language has no such template.
    pub fn render<T: Serialize>(&self, name: &str, lang: Language, data: &T) -> Result<String, handlebars::RenderError> {
        let registry = if name.ends_with(".html") { &self.html } else { &self.text };
        let localized = format!("{name}.{}", lang.as_str());
        let chosen = if registry.has_template(&localized) { localized } else { format!("{name}.pl") };
        registry.render(&chosen, data)
    }
}

impl Default for Messages {
    fn default() -> Self {
        Messages::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn html_is_escaped_and_text_is_not() {
        let m = Messages::new();
        let data = json!({"confirm_url": "https://x/v/a&b<c>", "preferences_url": "https://x/p"});
        let html = m.render("email/verify.html", Language::En, &data).unwrap();
        assert!(html.contains("a&amp;b&lt;c&gt;"), "{html}");
        let text = m.render("email/verify.text", Language::En, &data).unwrap();
        assert!(text.contains("https://x/v/a&b<c>"), "{text}");
    }

    #[test]
    fn a_missing_variable_is_an_error() {
        let m = Messages::new();
        assert!(m.render("sms/verify", Language::Pl, &json!({})).is_err());
    }

    #[test]
    fn every_language_has_every_message() {
        let m = Messages::new();
        for lang in [Language::Pl, Language::En, Language::Uk] {
            let sms = m.render("sms/verify", lang, &json!({"code": "123456", "preferences_url": "https://x/p/t"})).unwrap();
            assert!(sms.contains("123456") && sms.contains("https://x/p/t") && sms.is_ascii(), "{sms}");
        }
    }
}
