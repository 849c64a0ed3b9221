//! The catalog: every webhook an application declares, by name.

use crate::webhook::{Converted, Declaration, Declare, Method};

/// The webhooks an application sends, in declaration order.
///
/// Documenting, validating and sending all read this one list, so the docs cannot promise
/// something the sender does not do.
#[derive(Clone, Debug, Default)]
pub struct Webhooks {
    declarations: Vec<Declaration>,
}

impl Webhooks {
    /// An empty catalog.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a webhook: a [`Webhook`](crate::Webhook) or a function marked `#[webhook]`.
    ///
    /// Duplicates are reported when the document is built, with every offender named.
    ///
    /// A versioned webhook brings the versions it declares as [`previous`](crate::Webhook::previous)
    /// with it; one declared both ways is kept once.
    pub fn webhook(mut self, webhook: impl Declare) -> Self {
        let mut next = Some(webhook.declare().into_declaration());
        while let Some(declaration) = next {
            next = declaration
                .previous
                .as_ref()
                .map(|p| (*p.declaration).clone());
            self.push(declaration);
        }
        self
    }

    /// Adds a declaration, unless the same version is there already (a version declared on its
    /// own and as another's `previous`): then the one that knows its own previous is kept.
    pub(crate) fn push(&mut self, declaration: Declaration) {
        let same = |d: &Declaration| {
            d.version.is_some()
                && d.name == declaration.name
                && d.method == declaration.method
                && d.version == declaration.version
        };
        let bare = |d: &Declaration| Declaration {
            previous: None,
            ..d.clone()
        };
        let existing = self.declarations.iter_mut().find(|d| same(d));
        if let Some(existing) = existing.filter(|e| bare(e) == bare(&declaration)) {
            if existing.previous.is_none() {
                *existing = declaration;
            }
            return;
        }
        self.declarations.push(declaration);
    }

    /// Adds every webhook of `other`.
    pub fn merge(mut self, other: Webhooks) -> Self {
        for declaration in other.declarations {
            self.push(declaration);
        }
        self
    }

    /// The versions declared for the webhook `name`, oldest first; empty if it has none.
    pub fn versions(&self, name: &str) -> Vec<&str> {
        let mut versions: Vec<&str> = self
            .declarations
            .iter()
            .filter(|d| d.name == name)
            .filter_map(Declaration::version)
            .collect();
        versions.sort_unstable();
        versions.dedup();
        versions
    }

    /// Every version date declared by any webhook, oldest first: what an endpoint may pin.
    pub fn all_versions(&self) -> Vec<&str> {
        let mut versions: Vec<&str> = self
            .declarations
            .iter()
            .filter_map(Declaration::version)
            .collect();
        versions.sort_unstable();
        versions.dedup();
        versions
    }

    /// The declaration of `name` at `version` (`None`: the newest, or the only one).
    pub fn find(&self, name: &str, version: Option<&str>) -> Option<&Declaration> {
        let version = match version {
            Some(v) => v,
            None => match self.versions(name).last() {
                Some(newest) => newest,
                None => return self.declarations.iter().find(|d| d.name == name),
            },
        };
        self.declarations
            .iter()
            .find(|d| d.name == name && d.version() == Some(version))
    }

    /// Whether `declaration` is the newest version of its webhook (or is not versioned).
    pub fn is_newest(&self, declaration: &Declaration) -> bool {
        match declaration.version() {
            None => true,
            Some(version) => self.versions(&declaration.name).last() == Some(&version),
        }
    }

    /// The key of `declaration` under the document's `webhooks`: its name for the newest
    /// version, `name@version` for the older ones.
    pub fn key(&self, declaration: &Declaration) -> String {
        match declaration.version() {
            Some(version) if !self.is_newest(declaration) => {
                format!("{}@{version}", declaration.name)
            }
            _ => declaration.name.clone(),
        }
    }

    /// The `operationId` of `declaration`: an older version that kept the newest's gets its
    /// date appended (`new_subscription_2026_01_01`), so every version has its own.
    pub fn operation_id(&self, declaration: &Declaration) -> String {
        let own = declaration.operation_id();
        match (declaration.version(), self.older_twin(declaration)) {
            (Some(version), Some(newest)) if newest.operation_id() == own => {
                format!("{own}_{}", version.replace('-', "_"))
            }
            _ => own.to_owned(),
        }
    }

    /// The summary of `declaration`: an older version that kept the newest's gets its date
    /// appended, e.g. `New Subscription (2026-01-01)`.
    pub fn summary(&self, declaration: &Declaration) -> String {
        let own = declaration.summary();
        match (declaration.version(), self.older_twin(declaration)) {
            (Some(version), Some(newest)) if newest.summary() == own => {
                format!("{own} ({version})")
            }
            _ => own.to_owned(),
        }
    }

    /// The newest version of `declaration`'s webhook, if `declaration` is an older one.
    fn older_twin(&self, declaration: &Declaration) -> Option<&Declaration> {
        (!self.is_newest(declaration))
            .then(|| self.find(declaration.name(), None))
            .flatten()
    }

    /// `body`, a payload of `name` at version `from`, converted to every older version its
    /// conversions reach, newest first.
    ///
    /// Fails with the versions and the reason when a conversion fails (or panics).
    pub fn convert(
        &self,
        name: &str,
        from: &str,
        body: &serde_json::Value,
    ) -> Result<Vec<Converted>, String> {
        let mut converted: Vec<Converted> = Vec::new();
        let mut at = self.find(name, Some(from));
        while let Some(declaration) = at {
            let Some(previous) = &declaration.previous else {
                break;
            };
            let Some(version) = previous.declaration.version() else {
                break;
            };
            let input = match converted.last() {
                Some(previous) => previous.body.clone(),
                None => integers_as_integers(body.clone()),
            };
            // The application's own code: a panic in it is reported like a failure, not
            // carried into the request that asked for it.
            let convert = std::panic::AssertUnwindSafe(|| (previous.convert.0)(input));
            let mut output = std::panic::catch_unwind(convert)
                .unwrap_or_else(|panic| {
                    let message = panic
                        .downcast_ref::<&str>()
                        .map(|s| (*s).to_owned())
                        .or_else(|| panic.downcast_ref::<String>().cloned())
                        .unwrap_or_default();
                    Err(format!("the conversion panicked: {message}"))
                })
                .map_err(|e| {
                    format!(
                        "converting `{name}` from version {} to {version}: {e}",
                        declaration.version().unwrap_or_default()
                    )
                })?;
            output.version = version.to_owned();
            converted.push(output);
            at = self.find(name, Some(version));
        }
        Ok(converted)
    }

    /// Refuses versions that cannot be told apart or ordered: a version that is not a date
    /// `YYYY-MM-DD`, a webhook with versioned and unversioned declarations, and a `previous`
    /// that is not an older version of the same webhook.
    pub(crate) fn check_versions(&self) -> Result<(), crate::Error> {
        use crate::error::{Error, ErrorKind};
        let problem = |message: String| Err(Error::new(ErrorKind::InvalidVersion, message));
        for declaration in &self.declarations {
            let name = &declaration.name;
            match declaration.version() {
                Some(version) if !is_date(version) => {
                    return problem(format!(
                        "webhook `{name}` has version `{version}`; a version is a date, \
                         `YYYY-MM-DD`"
                    ));
                }
                None if !self.versions(name).is_empty() => {
                    return problem(format!(
                        "webhook `{name}` is declared both with and without a version; give \
                         every declaration of it a version"
                    ));
                }
                _ => {}
            }
            if let Some(previous) = &declaration.previous {
                let older = &previous.declaration;
                let ordered = matches!(
                    (older.version(), declaration.version()),
                    (Some(old), Some(new)) if old < new
                );
                if older.name != *name || !ordered {
                    return problem(format!(
                        "webhook `{name}` version {} names `{}` version {} as its previous; \
                         the previous version is an older version of the same webhook",
                        declaration.version().unwrap_or("(none)"),
                        older.name,
                        older.version().unwrap_or("(none)"),
                    ));
                }
            }
        }
        Ok(())
    }

    /// The declarations, in the order they were added.
    pub fn iter(&self) -> impl Iterator<Item = &Declaration> {
        self.declarations.iter()
    }

    /// The webhook declared as `name` with `method` (its newest version).
    pub fn get(&self, name: &str, method: Method) -> Option<&Declaration> {
        self.find(name, None).filter(|d| d.method() == method)
    }

    /// How many webhooks are declared.
    pub fn len(&self) -> usize {
        self.declarations.len()
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.declarations.is_empty()
    }
}

/// Whether `text` is a calendar date written `YYYY-MM-DD`.
fn is_date(text: &str) -> bool {
    let bytes = text.as_bytes();
    let digits = |range: std::ops::Range<usize>| bytes[range].iter().all(u8::is_ascii_digit);
    if bytes.len() != 10 || bytes[4] != b'-' || bytes[7] != b'-' {
        return false;
    }
    if !(digits(0..4) && digits(5..7) && digits(8..10)) {
        return false;
    }
    let month: u32 = text[5..7].parse().unwrap_or(0);
    let day: u32 = text[8..10].parse().unwrap_or(0);
    (1..=12).contains(&month) && (1..=31).contains(&day)
}

/// `value` with every number that JSON Schema calls an integer written as one: a sender's
/// `5.0` is valid against `"type": "integer"`, and serde refuses it for a `u64`.
fn integers_as_integers(value: serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match value {
        Value::Number(n) => match n.as_f64() {
            Some(f) if n.is_f64() && f.fract() == 0.0 && f.abs() < 9.0e15 => {
                // Below 2^53, so exactly an integer.
                Value::from(f as i64)
            }
            _ => Value::Number(n),
        },
        Value::Array(items) => Value::Array(items.into_iter().map(integers_as_integers).collect()),
        Value::Object(members) => Value::Object(
            members
                .into_iter()
                .map(|(k, v)| (k, integers_as_integers(v)))
                .collect(),
        ),
        other => other,
    }
}
