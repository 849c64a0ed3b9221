//! The declared webhooks as the API sees them: names and compiled JSON Schema validators.

use std::collections::HashMap;

use serde_json::Value;

use crate::problem::Violation;

/// One validator per declared event type, compiled once at start.
pub(crate) struct EventTypes {
    validators: HashMap<String, jsonschema::Validator>,
}

impl EventTypes {
    /// Compiles every declared webhook's body schema; a schema that does not compile stops
    /// start-up with its name.
    pub(crate) fn new(webhooks: &herald::Webhooks) -> Result<EventTypes, String> {
        let mut validators = HashMap::new();
        for declaration in webhooks.iter() {
            if validators.contains_key(declaration.name()) {
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
            validators.insert(declaration.name().to_owned(), validator);
        }
        Ok(EventTypes { validators })
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
