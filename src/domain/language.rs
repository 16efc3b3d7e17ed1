use serde::{Deserialize, Serialize};

/// The languages residents read: Polish (the default and the fallback), English, Ukrainian.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Language {
    #[default]
    Pl,
    En,
    Uk,
}

impl Language {
    pub fn parse(s: &str) -> Result<Language, String> {
        match s {
            "pl" => Ok(Language::Pl),
            "en" => Ok(Language::En),
            "uk" => Ok(Language::Uk),
            other => Err(format!("{other:?} is not one of pl, en, uk")),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Language::Pl => "pl",
            Language::En => "en",
            Language::Uk => "uk",
        }
    }
}
