//! Tenant ids: checked once, where they enter, and carried as [`TenantId`] from then on.

use std::fmt;
use std::str::FromStr;

use crate::error::{Error, ErrorKind};

/// The longest tenant id.
const MAX_LEN: usize = 64;

/// One of your users who receives webhooks, by the id you chose: 1 to 64 ASCII letters,
/// digits, `_`, `-` or `.` (so it is safe in URLs, logs and file names).
///
/// ```
/// use herald_server::TenantId;
///
/// let acme: TenantId = "acme".parse().unwrap();
/// assert_eq!(acme.as_str(), "acme");
/// assert!("".parse::<TenantId>().is_err());
/// assert!("a/b".parse::<TenantId>().is_err());
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TenantId(String);

impl TenantId {
    /// `id` if it is a valid tenant id.
    pub fn new(id: impl Into<String>) -> Result<TenantId, Error> {
        let id = id.into();
        let valid = (1..=MAX_LEN).contains(&id.len())
            && id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c));
        if valid {
            Ok(TenantId(id))
        } else {
            Err(Error::new(
                ErrorKind::InvalidTenant,
                format!(
                    "{id:?} is not a valid tenant id: it is 1 to {MAX_LEN} letters, digits, \
                     `_`, `-` or `.`"
                ),
            ))
        }
    }

    /// The id.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for TenantId {
    type Err = Error;

    fn from_str(id: &str) -> Result<TenantId, Error> {
        TenantId::new(id)
    }
}

impl TryFrom<String> for TenantId {
    type Error = Error;

    fn try_from(id: String) -> Result<TenantId, Error> {
        TenantId::new(id)
    }
}

impl AsRef<str> for TenantId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::TenantId;

    #[test]
    fn ids_are_checked() {
        let cases = [
            ("acme", true),
            ("a", true),
            ("Acme_Corp-2.eu", true),
            (&"x".repeat(64), true),
            (&"x".repeat(65), false),
            ("", false),
            ("a b", false),
            ("a/b", false),
            ("a\u{0}", false),
            ("é", false),
        ];
        for (id, valid) in cases {
            assert_eq!(TenantId::new(id).is_ok(), valid, "{id:?}");
        }
    }
}
