use std::fmt;

/// An email address as residents give it, trimmed, with the domain lower-cased (the local
/// part is case-sensitive by the RFC, though rarely in practice).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct EmailAddress(String);

impl EmailAddress {
    pub fn parse(raw: &str) -> Result<EmailAddress, String> {
        let s = raw.trim();
        if s.len() > 254 {
            return Err("is longer than 254 characters".into());
        }
        let Some((local, domain)) = s.rsplit_once('@') else {
            return Err("must contain @".into());
        };
        if local.is_empty() || local.len() > 64 {
            return Err("needs 1 to 64 characters before @".into());
        }
        if s.chars().any(|c| c.is_whitespace() || c.is_control() || "<>,;\"".contains(c)) {
            return Err("contains a space or a character not allowed in an address".into());
        }
        let labels: Vec<&str> = domain.split('.').collect();
        let label_ok = |l: &&str| !l.is_empty() && !l.starts_with('-') && !l.ends_with('-') && l.chars().all(|c| c.is_alphanumeric() || c == '-');
        if labels.len() < 2 || !labels.iter().all(label_ok) {
            return Err(format!("{domain:?} is not a domain like example.pl"));
        }
        let domain = domain.to_lowercase();
        // What the mailer refuses could never be confirmed (found by a property test: `(@a.pl`).
        match lettre::Address::new(local, &domain) {
            Ok(_) => Ok(EmailAddress(format!("{local}@{domain}"))),
            Err(lettre::address::AddressError::InvalidDomain) => Err(format!("{domain:?} is not a domain like example.pl")),
            Err(_) => Err(format!("{local:?} has a character not allowed before @")),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_domain_is_lower_cased_and_spaces_trimmed() {
        assert_eq!(EmailAddress::parse("  Anna.Nowak@Gmail.COM ").unwrap().as_str(), "Anna.Nowak@gmail.com");
    }

    /// Address-like text, with the characters that break addresses mixed in.
    fn address_like() -> impl proptest::strategy::Strategy<Value = String> {
        "[ a-zA-Z0-9._%+<>,;\"\\r\n\t(){}ąłżЯ-]{0,12}@[a-zA-Z0-9.ąłЯ _-]{0,16}"
    }

    proptest::proptest! {
        /// What the parser accepts, the mailer can send to, and parsing it again changes nothing.
        #[test]
        fn an_accepted_address_can_be_mailed(raw in proptest::prop_oneof![address_like(), proptest::prelude::any::<String>()]) {
            if let Ok(address) = EmailAddress::parse(&raw) {
                let s = address.as_str();
                proptest::prop_assert!(!s.chars().any(|c| c.is_whitespace() || c.is_control()), "{:?}", s);
                proptest::prop_assert!(s.parse::<lettre::Address>().is_ok(), "lettre refuses {:?}", s);
                proptest::prop_assert_eq!(EmailAddress::parse(s).map(|a| a.as_str().to_owned()), Ok(s.to_owned()));
            }
        }
    }

    #[test]
    fn garbage_is_refused_with_a_reason() {
        for bad in ["anna", "@x.pl", "anna@", "anna@localhost", "an na@x.pl", "anna@x..pl", "a<b>@x.pl", "(@a.pl", "a..b@x.pl", ".a@x.pl"] {
            assert!(EmailAddress::parse(bad).is_err(), "{bad}");
        }
    }
}
