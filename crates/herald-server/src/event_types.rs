//! The declared webhooks as the API sees them: the catalogue (description, schema, example)
//! and compiled JSON Schema validators.

use std::collections::HashMap;

use serde_json::Value;

use crate::problem::Violation;

/// One declared event type, as the catalogue lists it.
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
}

/// One validator per declared event type, compiled once at start.
pub(crate) struct EventTypes {
    validators: HashMap<String, jsonschema::Validator>,
    catalogue: Vec<EventType>,
}

impl EventTypes {
    /// Compiles every declared webhook's body schema; a schema that does not compile stops
    /// start-up with its name.
    pub(crate) fn new(webhooks: &herald_core::Webhooks) -> Result<EventTypes, String> {
        let mut validators = HashMap::new();
        let mut catalogue = Vec::new();
        for declaration in webhooks.iter() {
            if validators.contains_key(declaration.name()) {
                continue;
            }
            let schema = declaration.json_schema();
            let declared = declaration.example().cloned();
            catalogue.push(EventType {
                name: declaration.name().to_owned(),
                summary: declaration.summary().to_owned(),
                description: declaration.description().map(str::to_owned),
                example_declared: declared.is_some(),
                example: declared.unwrap_or_else(|| crate::example::example(&schema)),
                schema: schema.clone(),
                body_schema: declaration.body_schema_name().to_owned(),
            });
            let validator = jsonschema::options()
                .should_validate_formats(true)
                .build(&schema)
                .map_err(|e| {
                    format!(
                        "the body schema of webhook `{}` does not compile: {e}",
                        declaration.name()
                    )
                })?;
            validators.insert(declaration.name().to_owned(), validator);
        }
        catalogue.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(EventTypes {
            validators,
            catalogue,
        })
    }

    /// Every declared type, by name.
    pub(crate) fn catalogue(&self) -> &[EventType] {
        &self.catalogue
    }

    /// One declared type.
    pub(crate) fn get(&self, name: &str) -> Option<&EventType> {
        self.catalogue.iter().find(|t| t.name == name)
    }

    pub(crate) fn contains(&self, name: &str) -> bool {
        self.validators.contains_key(name)
    }

    /// The declared names, sorted, for error messages.
    pub(crate) fn names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self.validators.keys().map(String::as_str).collect();
        names.sort_unstable();
        names
    }

    /// Every way `payload` breaks the schema of `event_type`, with paths under `prefix`.
    pub(crate) fn violations(
        &self,
        event_type: &str,
        payload: &Value,
        prefix: &str,
    ) -> Vec<Violation> {
        let Some(validator) = self.validators.get(event_type) else {
            return Vec::new();
        };
        validator
            .iter_errors(payload)
            .map(|error| Violation {
                path: format!("{prefix}{}", error.instance_path()),
                message: error.to_string(),
            })
            .collect()
    }
}
