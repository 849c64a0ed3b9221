//! Webhooks read from an OpenAPI document, so an application written in any language gets
//! herald as its webhook service: the `webhooks` of a 3.1 document (or `x-webhooks` of a 3.0
//! one), each body's schema, and every schema those refer to under `components.schemas`.
//!
//! ```
//! let text = r##"{
//!   "openapi": "3.1.0",
//!   "info": { "title": "Shop", "version": "1.0.0" },
//!   "webhooks": { "order-paid": { "post": {
//!     "requestBody": { "content": { "application/json": {
//!       "schema": { "$ref": "#/components/schemas/Order" } } } } } } },
//!   "components": { "schemas": { "Order": {
//!     "type": "object", "required": ["id"], "properties": { "id": { "type": "string" } } } } }
//! }"##;
//! let spec = herald_core::spec::read(text).unwrap();
//! let order_paid = spec.webhooks.iter().next().unwrap();
//! assert_eq!(order_paid.name(), "order-paid");
//! assert_eq!(order_paid.summary(), "Order Paid");
//! assert_eq!(order_paid.body_schema_name(), "Order");
//!
//! let broken = text.replace("#/components/schemas/Order", "#/components/schemas/Ordre");
//! let error = herald_core::spec::read(&broken).unwrap_err();
//! assert_eq!(
//!     error.to_string(),
//!     "#/webhooks/order-paid/post/requestBody/content/application~1json/schema/$ref: \
//!      `#/components/schemas/Ordre` is not in this document"
//! );
//! ```

use serde_json::{Map, Value};
use utoipa::openapi::{RefOr, Schema};

use crate::error::{Error, ErrorKind};
use crate::naming;
use crate::webhook::{BodySchema, Declaration, HeaderDoc, Method, ResponseDoc};
use crate::{App, Webhooks};

/// What herald serves from an OpenAPI document.
#[derive(Clone, Debug)]
pub struct Spec {
    /// `info.title`.
    pub title: String,
    /// `info.version`.
    pub version: String,
    /// One declaration per webhook operation.
    pub webhooks: Webhooks,
}

impl Spec {
    /// An app that serves these webhooks (and no routes of its own).
    pub fn app(self) -> App {
        App::new(&self.title, &self.version).webhooks(self.webhooks)
    }
}

/// Reads the webhooks of an OpenAPI 3.1 or 3.0 document (JSON).
///
/// Refuses, with the JSON pointer at fault, what herald cannot serve: another version, no
/// webhooks, an operation without a JSON request body, a method herald does not send, a `$ref`
/// that leaves the document or points at nothing, a schema that is not an object.
pub fn read(text: &str) -> Result<Spec, Error> {
    let doc: Value = serde_json::from_str(text).map_err(|e| fail("", format!("not JSON: {e}")))?;
    if !doc.is_object() {
        return Err(fail(
            "",
            "not an OpenAPI document: the top level is not an object",
        ));
    }
    let version = doc
        .get("openapi")
        .and_then(Value::as_str)
        .ok_or_else(|| fail("/openapi", "missing: this is not an OpenAPI 3 document"))?;
    let (key, v30) = if version.starts_with("3.1.") {
        ("webhooks", false)
    } else if version.starts_with("3.0.") {
        ("x-webhooks", true)
    } else {
        return Err(fail(
            "/openapi",
            format!(
                "version {version} is not supported: herald reads OpenAPI 3.1 (`webhooks`) \
                 and 3.0 (`x-webhooks`)"
            ),
        ));
    };
    let info = |field: &str, default: &str| {
        doc.pointer(&format!("/info/{field}"))
            .and_then(Value::as_str)
            .unwrap_or(default)
            .to_owned()
    };
    let reader = Reader { doc: &doc, v30 };
    let pointer = format!("/{key}");
    let hooks = doc
        .get(key)
        .and_then(Value::as_object)
        .filter(|hooks| !hooks.is_empty())
        .ok_or_else(|| fail(&pointer, "no webhooks: there is nothing to serve"))?;
    let mut webhooks = Webhooks::new();
    for (name, item) in hooks {
        let (item, at) = reader.follow(item, format!("{pointer}/{}", escape(name)))?;
        let item = item
            .as_object()
            .ok_or_else(|| fail(&at, "a webhook is an object of operations"))?;
        let mut operations = 0;
        for (field, operation) in item {
            let method = match field.as_str() {
                "post" => Method::Post,
                "put" => Method::Put,
                "patch" => Method::Patch,
                "delete" => Method::Delete,
                "get" => Method::Get,
                "head" | "options" | "trace" => {
                    return Err(fail(
                        &format!("{at}/{field}"),
                        "herald sends POST, PUT, PATCH, DELETE or GET",
                    ));
                }
                _ => continue,
            };
            operations += 1;
            webhooks.push(reader.declaration(name, method, operation, &format!("{at}/{field}"))?);
        }
        if operations == 0 {
            return Err(fail(
                &at,
                "no operation: a webhook needs one of post, put, patch, delete or get",
            ));
        }
    }
    Ok(Spec {
        title: info("title", "Webhooks"),
        version: info("version", "0.0.0"),
        webhooks,
    })
}

struct Reader<'a> {
    doc: &'a Value,
    /// OpenAPI 3.0: `nullable` becomes a `null` type, as JSON Schema (and 3.1) spell it.
    v30: bool,
}

impl Reader<'_> {
    fn declaration(
        &self,
        name: &str,
        method: Method,
        operation: &Value,
        at: &str,
    ) -> Result<Declaration, Error> {
        let text = |field: &str| operation.get(field).and_then(Value::as_str);
        let version = match operation.get(crate::openapi::VERSION_EXTENSION) {
            None => None,
            Some(Value::String(version)) => Some(version.clone()),
            Some(_) => {
                return Err(fail(
                    &format!("{at}/{}", crate::openapi::VERSION_EXTENSION),
                    "not a string: a webhook's version is a date, `YYYY-MM-DD`",
                ));
            }
        };
        // herald writes an older version under `name@version`; the webhook is still `name`.
        let name = match &version {
            Some(version) => name
                .strip_suffix(version.as_str())
                .and_then(|n| n.strip_suffix('@'))
                .unwrap_or(name),
            None => name,
        };
        let at_body = format!("{at}/requestBody");
        let body = operation
            .get("requestBody")
            .ok_or_else(|| fail(&at_body, "missing: a webhook needs a JSON request body"))?;
        let (body, at_body) = self.follow(body, at_body)?;
        let content = body
            .get("content")
            .and_then(Value::as_object)
            .ok_or_else(|| fail(&format!("{at_body}/content"), "missing"))?;
        let (media_type, media) = content
            .iter()
            .find(|(media_type, _)| is_json(media_type))
            .ok_or_else(|| {
                fail(
                    &format!("{at_body}/content"),
                    "no JSON media type (application/json or …+json): herald sends JSON",
                )
            })?;
        let at_media = format!("{at_body}/content/{}", escape(media_type));
        let schema = media
            .get("schema")
            .ok_or_else(|| fail(&format!("{at_media}/schema"), "missing"))?;
        let body = self.body_schema(name, method, schema, &format!("{at_media}/schema"))?;
        let example = media.get("example").cloned().or_else(|| {
            media
                .get("examples")
                .and_then(Value::as_object)
                .and_then(|examples| examples.values().find_map(|e| e.get("value")).cloned())
        });
        Ok(Declaration {
            name: name.to_owned(),
            method,
            operation_id: text("operationId")
                .map(str::to_owned)
                .unwrap_or_else(|| naming::operation_id(name)),
            summary: text("summary")
                .map(str::to_owned)
                .unwrap_or_else(|| naming::summary(name)),
            description: text("description").map(str::to_owned),
            tags: operation
                .get("tags")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect(),
            deprecated: operation.get("deprecated") == Some(&Value::Bool(true)),
            headers: self.headers(operation, at)?,
            version,
            previous: None,
            responses: operation
                .get("responses")
                .and_then(Value::as_object)
                .into_iter()
                .flatten()
                .filter_map(|(status, response)| {
                    Some(ResponseDoc {
                        status: status.parse().ok()?,
                        description: response
                            .get("description")
                            .and_then(Value::as_str)
                            .unwrap_or_default()
                            .to_owned(),
                    })
                })
                .collect(),
            example: example.map(Ok),
            body,
        })
    }

    /// The header parameters the receiver may get, beside the signature headers herald sets.
    fn headers(&self, operation: &Value, at: &str) -> Result<Vec<HeaderDoc>, Error> {
        let mut headers = Vec::new();
        let parameters = operation.get("parameters").and_then(Value::as_array);
        for (i, parameter) in parameters.into_iter().flatten().enumerate() {
            let (parameter, _) = self.follow(parameter, format!("{at}/parameters/{i}"))?;
            let name = parameter
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or_default();
            if parameter.get("in").and_then(Value::as_str) == Some("header")
                && !name.to_ascii_lowercase().starts_with("webhook-")
            {
                headers.push(HeaderDoc {
                    name: name.to_owned(),
                    description: parameter
                        .get("description")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_owned(),
                });
            }
        }
        Ok(headers)
    }

    /// The body's schema under its component name (or a name made from the webhook's when it
    /// is written inline), with every component it needs.
    fn body_schema(
        &self,
        name: &str,
        method: Method,
        schema: &Value,
        at: &str,
    ) -> Result<BodySchema, Error> {
        let own = schema
            .get("$ref")
            .and_then(Value::as_str)
            .and_then(component_name);
        let (body_name, body, body_at) = match own {
            Some(component) if schema.as_object().is_some_and(|s| s.len() == 1) => {
                let (body, body_at) = self.component(&component, &format!("{at}/$ref"))?;
                (component, body.clone(), body_at)
            }
            _ => {
                let mut body_name = format!("{}Body", naming::summary(name).replace(' ', ""));
                if self.doc.pointer(&schema_pointer(&body_name)).is_some() {
                    body_name = format!("{body_name}{}", naming::summary(method.as_str()));
                }
                (body_name, schema.clone(), at.to_owned())
            }
        };
        let mut json = Map::new();
        json.insert(body_name.clone(), self.normalized(body.clone()));
        let mut pending = vec![(body, body_at)];
        while let Some((value, at)) = pending.pop() {
            for (reference, at) in references(&value, &at) {
                let component = component_name(&reference).ok_or_else(|| {
                    fail(
                        &at,
                        format!(
                            "`{reference}`: herald follows only references into \
                             #/components/schemas of the same document"
                        ),
                    )
                })?;
                if json.contains_key(&component) {
                    continue;
                }
                let (target, target_at) = self.component(&component, &at)?;
                json.insert(component, self.normalized(target.clone()));
                pending.push((target.clone(), target_at));
            }
        }
        let mut typed = Vec::new();
        for (component, value) in &json {
            let parsed: RefOr<Schema> = serde_json::from_value(value.clone()).map_err(|e| {
                fail(
                    &schema_pointer(component),
                    format!("not a schema herald can read: {e}"),
                )
            })?;
            typed.push((component.clone(), parsed));
        }
        let schema = typed
            .iter()
            .position(|(component, _)| *component == body_name)
            .map(|i| typed.remove(i).1)
            .unwrap_or_default();
        Ok(BodySchema {
            name: body_name,
            schema,
            components: typed,
            json: Some(json),
        })
    }

    /// `#/components/schemas/{name}`, or an error at `at` (where the reference was).
    fn component(&self, name: &str, at: &str) -> Result<(&Value, String), Error> {
        let pointer = schema_pointer(name);
        match self.doc.pointer(&pointer) {
            Some(value) if value.is_object() || value.is_boolean() => Ok((value, pointer)),
            Some(_) => Err(fail(&pointer, "a schema is an object")),
            None => Err(fail(at, format!("`#{pointer}` is not in this document"))),
        }
    }

    /// `value`, or what its local `$ref` points to (followed until it is not a reference).
    fn follow<'v>(&'v self, value: &'v Value, at: String) -> Result<(&'v Value, String), Error> {
        let mut value = value;
        let mut at = at;
        for _ in 0..16 {
            let Some(reference) = value.get("$ref").and_then(Value::as_str) else {
                return Ok((value, at));
            };
            let Some(pointer) = reference.strip_prefix('#') else {
                return Err(fail(
                    &format!("{at}/$ref"),
                    format!(
                        "`{reference}`: herald reads one document; references to other files are not followed"
                    ),
                ));
            };
            value = self.doc.pointer(pointer).ok_or_else(|| {
                fail(
                    &format!("{at}/$ref"),
                    format!("`{reference}` is not in this document"),
                )
            })?;
            at = pointer.to_owned();
        }
        Err(fail(&at, "references loop"))
    }

    /// 3.0's `nullable: true` as a `null` type; anything else as it is.
    fn normalized(&self, mut schema: Value) -> Value {
        if self.v30 {
            nullable_to_type(&mut schema);
        }
        schema
    }
}

/// Every `$ref` string inside `value`, with its pointer, not descending into the referenced
/// schemas (the caller follows those).
fn references(value: &Value, at: &str) -> Vec<(String, String)> {
    let mut found = Vec::new();
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                let child_at = format!("{at}/{}", escape(key));
                match (key.as_str(), child) {
                    ("$ref", Value::String(reference)) => {
                        found.push((reference.clone(), child_at));
                    }
                    // Examples and defaults are data, not schemas.
                    ("example" | "examples" | "default" | "const" | "enum", _) => {}
                    _ => found.extend(references(child, &child_at)),
                }
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                found.extend(references(child, &format!("{at}/{i}")));
            }
        }
        _ => {}
    }
    found
}

fn nullable_to_type(schema: &mut Value) {
    match schema {
        Value::Object(map) => {
            if map.remove("nullable") == Some(Value::Bool(true)) {
                match map.get_mut("type") {
                    Some(Value::String(kind)) => {
                        let kind = std::mem::take(kind);
                        map.insert("type".into(), serde_json::json!([kind, "null"]));
                    }
                    Some(Value::Array(kinds)) if !kinds.contains(&Value::from("null")) => {
                        kinds.push("null".into());
                    }
                    _ => {}
                }
            }
            for (key, child) in map.iter_mut() {
                if !matches!(key.as_str(), "example" | "default" | "enum") {
                    nullable_to_type(child);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(nullable_to_type),
        _ => {}
    }
}

fn component_name(reference: &str) -> Option<String> {
    let name = reference.strip_prefix("#/components/schemas/")?;
    (!name.contains('/')).then(|| name.replace("~1", "/").replace("~0", "~"))
}

fn schema_pointer(name: &str) -> String {
    format!("/components/schemas/{}", escape(name))
}

fn is_json(media_type: &str) -> bool {
    let essence = media_type.split(';').next().unwrap_or_default().trim();
    essence.eq_ignore_ascii_case("application/json") || essence.ends_with("+json")
}

/// A JSON pointer token: `~` as `~0`, `/` as `~1`.
fn escape(token: &str) -> String {
    token.replace('~', "~0").replace('/', "~1")
}

fn fail(pointer: &str, message: impl std::fmt::Display) -> Error {
    Error::new(ErrorKind::InvalidSpec, format!("#{pointer}: {message}"))
}
