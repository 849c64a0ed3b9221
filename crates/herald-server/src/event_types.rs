//! The declared webhooks as the API sees them: the catalogue (description, schema, example)
//! and compiled JSON Schema validators.

use std::collections::{BTreeMap, HashMap};

use herald_store::Versions;
use serde_json::Value;

use crate::problem::Violation;

/// One declared event type, as the catalogue lists it: its newest version at the top.
#[derive(Clone, Debug)]
pub(crate) struct EventType {
    pub(crate) name: String,
    pub(crate) summary: String,
    pub(crate) description: Option<String>,
    /// The body's JSON Schema, self-contained.
    pub(crate) schema: Value,
    /// The name of the body's schema under the document's `components.schemas`.
    pub(crate) body_schema: String,
    /// The declared example, or one made from the schema.
    pub(crate) example: Value,
    /// False when the example was made from the schema.
    pub(crate) example_declared: bool,
    /// For a versioned webhook, every version, oldest first (the last is the one above).
    pub(crate) versions: Vec<TypeVersion>,
    /// One of herald's operational webhooks ([`crate::operational`]): endpoints may ask for it,
    /// only herald sends it.
    pub(crate) operational: bool,
}

/// One version of a versioned event type.
#[derive(Clone, Debug)]
pub(crate) struct TypeVersion {
    pub(crate) version: String,
    pub(crate) schema: Value,
    pub(crate) body_schema: String,
    pub(crate) example: Value,
    /// The version its conversion gives, if it declares one.
    pub(crate) converts_to: Option<String>,
}

impl EventType {
    /// The newest version's date, for a versioned type.
    pub(crate) fn version(&self) -> Option<&str> {
        self.versions.last().map(|v| v.version.as_str())
    }
}

/// Why an event cannot be stored in the versions it must carry.
#[derive(Debug)]
pub(crate) enum VersionError {
    /// The type has no such version (or none at all).
    Unknown(String),
    /// Converting to an older version failed.
    Conversion(String),
    /// A converted payload does not match its version's schema.
    Invalid {
        version: String,
        violations: Vec<Violation>,
    },
}

/// One validator per declared event type and version, compiled once at start.
pub(crate) struct EventTypes {
    /// By name, each version's (oldest first; the newest last, `None` for an unversioned type).
    validators: HashMap<String, Vec<(Option<String>, jsonschema::Validator)>>,
    /// The app's, sorted by name, then the operational ones, sorted by name.
    catalogue: Vec<EventType>,
    /// How many of `catalogue` the app declares.
    declared: usize,
    webhooks: herald_core::Webhooks,
}

impl EventTypes {
    /// Compiles every declared webhook's body schema; a schema that does not compile stops
    /// start-up with its name.
    /// herald's operational webhooks are added to the app's, whose names must differ.
    pub(crate) fn new(app: &herald_core::Webhooks) -> Result<EventTypes, String> {
        crate::operational::check_names(app)?;
        let webhooks = &app.clone().merge(crate::operational::webhooks());
        let mut validators: HashMap<String, Vec<(Option<String>, jsonschema::Validator)>> =
            HashMap::new();
        for declaration in webhooks.iter() {
            let versions = validators.entry(declaration.name().to_owned()).or_default();
            let version = declaration.version().map(str::to_owned);
            if versions.iter().any(|(v, _)| *v == version) {
                continue;
            }
            let validator = jsonschema::options()
                .should_validate_formats(true)
                .build(&declaration.json_schema())
                .map_err(|e| {
                    format!(
                        "the body schema of webhook `{}` does not compile: {e}",
                        declaration.name()
                    )
                })?;
            versions.push((version, validator));
        }
        for versions in validators.values_mut() {
            versions.sort_by(|a, b| a.0.cmp(&b.0));
        }
        let mut catalogue: Vec<EventType> = Vec::new();
        for declaration in webhooks.iter() {
            let name = declaration.name();
            if catalogue.iter().any(|t| t.name == name) {
                continue;
            }
            let Some(newest) = webhooks.find(name, None) else {
                continue;
            };
            let versions = webhooks
                .versions(name)
                .into_iter()
                .filter_map(|v| webhooks.find(name, Some(v)))
                .map(|d| TypeVersion {
                    version: d.version().unwrap_or_default().to_owned(),
                    schema: d.json_schema(),
                    body_schema: d.body_schema_name().to_owned(),
                    example: example_of(d).0,
                    converts_to: d.previous_version().map(str::to_owned),
                })
                .collect();
            let (example, example_declared) = example_of(newest);
            catalogue.push(EventType {
                name: name.to_owned(),
                summary: newest.summary().to_owned(),
                description: newest.description().map(str::to_owned),
                example_declared,
                example,
                schema: newest.json_schema(),
                body_schema: newest.body_schema_name().to_owned(),
                versions,
                operational: herald_store::operational::is_operational(name),
            });
        }
        // The app's first, then herald's; each part by name.
        catalogue.sort_by(|a, b| (a.operational, &a.name).cmp(&(b.operational, &b.name)));
        let declared = catalogue.partition_point(|t| !t.operational);
        Ok(EventTypes {
            validators,
            catalogue,
            declared,
            webhooks: webhooks.clone(),
        })
    }

    /// Every type: the app's, then the operational ones, each by name.
    pub(crate) fn catalogue(&self) -> &[EventType] {
        &self.catalogue
    }

    /// One type, the app's or an operational one.
    pub(crate) fn get(&self, name: &str) -> Option<&EventType> {
        let (app, operational) = self.catalogue.split_at(self.declared);
        [app, operational].into_iter().find_map(|part| {
            let at = part.binary_search_by(|t| t.name.as_str().cmp(name)).ok()?;
            Some(&part[at])
        })
    }

    /// Whether an endpoint may ask for events named `name`.
    pub(crate) fn contains(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// Whether an event named `name` may be sent: a type the app declares.
    pub(crate) fn sendable(&self, name: &str) -> bool {
        self.get(name).is_some_and(|t| !t.operational)
    }

    /// Every name an endpoint may ask for, for error messages.
    pub(crate) fn names(&self) -> Vec<&str> {
        self.catalogue.iter().map(|t| t.name.as_str()).collect()
    }

    /// The names the app declares, sorted, for error messages.
    pub(crate) fn sendable_names(&self) -> Vec<&str> {
        let declared = &self.catalogue[..self.declared];
        declared.iter().map(|t| t.name.as_str()).collect()
    }

    /// Every version any webhook declares, oldest first: what an endpoint may pin.
    pub(crate) fn pins(&self) -> Vec<&str> {
        self.webhooks.all_versions()
    }

    /// Every way `payload` breaks the schema of `event_type` at `version` (`None`: the newest),
    /// with paths under `prefix`.
    pub(crate) fn violations(
        &self,
        event_type: &str,
        version: Option<&str>,
        payload: &Value,
        prefix: &str,
    ) -> Vec<Violation> {
        let versions = self.validators.get(event_type).map(Vec::as_slice);
        let validator = match (versions, version) {
            (Some([.., (_, newest)]), None) => newest,
            (Some(versions), Some(version)) => {
                match versions.iter().find(|(v, _)| v.as_deref() == Some(version)) {
                    Some((_, validator)) => validator,
                    None => return Vec::new(),
                }
            }
            _ => return Vec::new(),
        };
        validator
            .iter_errors(payload)
            .map(|error| Violation {
                path: format!("{prefix}{}", error.instance_path()),
                message: error.to_string(),
            })
            .collect()
    }

    /// The versions an event of `event_type` whose payload is of `version` (`None`: the
    /// newest) carries: the payload converted to each older version its conversions reach,
    /// each checked against that version's schema. `None` for a type without versions.
    ///
    /// `payload` itself is checked by the caller, against `version`'s schema.
    pub(crate) fn versions(
        &self,
        event_type: &str,
        version: Option<&str>,
        payload: &Value,
    ) -> Result<Option<Versions>, VersionError> {
        let Some(declared) = self.get(event_type).map(|t| &t.versions) else {
            return Err(VersionError::Unknown(format!(
                "unknown event type `{event_type}`"
            )));
        };
        if declared.is_empty() && version.is_none() {
            return Ok(None); // the common case: an unversioned type, nothing to allocate
        }
        let declared: Vec<String> = declared.iter().map(|v| v.version.clone()).collect();
        let version = match version {
            None => match declared.last() {
                None => return Ok(None),
                Some(newest) => newest.clone(),
            },
            Some(v) if declared.iter().any(|d| d == v) => v.to_owned(),
            Some(v) if declared.is_empty() => {
                return Err(VersionError::Unknown(format!(
                    "`{event_type}` has no versions, so version `{v}` cannot be sent"
                )));
            }
            Some(v) => {
                return Err(VersionError::Unknown(format!(
                    "`{event_type}` has no version `{v}`; declared: {}",
                    declared.join(", ")
                )));
            }
        };
        let converted = self
            .webhooks
            .convert(event_type, &version, payload)
            .map_err(VersionError::Conversion)?;
        let mut bodies = BTreeMap::new();
        for older in converted {
            let violations = self.violations(event_type, Some(&older.version), &older.body, "");
            if !violations.is_empty() {
                return Err(VersionError::Invalid {
                    version: older.version,
                    violations,
                });
            }
            bodies.insert(older.version, older.text);
        }
        Ok(Some(Versions {
            declared,
            version,
            converted: bodies,
        }))
    }
}

/// A declaration's example: the declared one, or one made from its schema; and whether it was
/// declared.
fn example_of(declaration: &herald_core::Declaration) -> (Value, bool) {
    match declaration.example() {
        Some(example) => (example.clone(), true),
        None => (crate::example::example(&declaration.json_schema()), false),
    }
}
