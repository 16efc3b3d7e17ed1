//! Page templates (`templates/pages/`), embedded, HTML-escaped, strict, with their strings in
//! Polish, English and Ukrainian (`strings.json`).

use handlebars::Handlebars;
use serde_json::Value;

use crate::domain::Language;

const TEMPLATES: &[(&str, &str)] = &[
    ("layout", include_str!("../templates/pages/layout.hbs")),
    ("confirmed", include_str!("../templates/pages/confirmed.hbs")),
    ("link_invalid", include_str!("../templates/pages/link_invalid.hbs")),
    ("erased", include_str!("../templates/pages/erased.hbs")),
    ("preferences", include_str!("../templates/pages/preferences.hbs")),
    ("survey", include_str!("../templates/pages/survey.hbs")),
    ("survey_thanks", include_str!("../templates/pages/survey_thanks.hbs")),
    ("survey_closed", include_str!("../templates/pages/survey_closed.hbs")),
    ("survey_not_open", include_str!("../templates/pages/survey_not_open.hbs")),
    ("survey_cookie", include_str!("../templates/pages/survey_cookie.hbs")),
];

pub struct Pages {
    registry: Handlebars<'static>,
    strings: Value,
}

impl Pages {
    pub fn new() -> Pages {
        let mut registry = Handlebars::new();
        registry.set_strict_mode(true);
        for (name, source) in TEMPLATES {
            registry.register_template_string(name, *source).unwrap_or_else(|e| panic!("page {name}: {e}"));
        }
        let strings = serde_json::from_str(include_str!("../templates/pages/strings.json")).expect("page strings are JSON");
        Pages { registry, strings }
    }

    pub fn strings(&self, lang: Language) -> Value {
        self.strings[lang.as_str()].clone()
    }

    pub fn render(&self, name: &str, data: &Value) -> Result<String, handlebars::RenderError> {
        self.registry.render(name, data)
    }
}

impl Default for Pages {
    fn default() -> Self {
        Pages::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_language_has_every_string() {
        let pages = Pages::new();
        let keys: Vec<String> = pages.strings(Language::Pl).as_object().unwrap().keys().cloned().collect();
        for lang in [Language::En, Language::Uk] {
            let other = pages.strings(lang);
            for k in &keys {
                assert!(other[k].is_string(), "{k} missing in {}", lang.as_str());
            }
        }
    }
}
