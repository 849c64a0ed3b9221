//! What herald's API document says beyond the handlers' attributes, because it depends on the
//! app or holds for many operations at once: the names of the declared event types, the event
//! body each type takes, the answers any JSON body can get, and links from the operations that
//! create an object to the operations that use it.

use std::borrow::Cow;

use utoipa::openapi::link::LinkBuilder;
use utoipa::openapi::path::{Operation, PathItem};
use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Schema, SchemaType, Type};
use utoipa::openapi::{ContentBuilder, OpenApi, Ref, RefOr, ResponseBuilder};

use crate::event_types::EventTypes;

/// A declared webhook's name: a string in the handlers' attributes, the list of declared names
/// once [`describe`] knows the app.
pub(crate) enum EventTypeName {}

impl utoipa::PartialSchema for EventTypeName {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .description(Some("A declared webhook's name."))
            .examples(["new-subscription"])
            .into()
    }
}

impl utoipa::ToSchema for EventTypeName {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("EventTypeName")
    }
}

/// Completes the API's document for an app that declares `event_types`.
pub(crate) fn describe(doc: &mut OpenApi, event_types: &EventTypes) {
    text_without_nul(doc);
    name_event_types(doc, event_types);
    payload_filter(doc);
    credential_answers(doc);
    body_answers(doc);
    link_created_objects(doc);
}

/// `PayloadFilter`: the filter language's grammar, recursive, so a generator (or a client)
/// builds well-formed filters from the document alone. Whether a path exists in the endpoint's
/// event types is beyond JSON Schema: that is the 422 the operations document.
fn payload_filter(doc: &mut OpenApi) {
    let Some(components) = doc.components.as_mut() else {
        return;
    };
    let path = serde_json::json!({
        "type": "string", "pattern": "^(/.*)?$",
        "description": "A JSON Pointer (RFC 6901) into the payload; \"\" is the whole payload.",
        "examples": ["/monthly_fee"]
    });
    let condition = |test: &str, operand: serde_json::Value| {
        serde_json::json!({
            "title": test, "type": "object", "required": ["path", test],
            "properties": { "path": path, test: operand }, "additionalProperties": false
        })
    };
    let filter = serde_json::json!({"$ref": "#/components/schemas/PayloadFilter"});
    let list =
        serde_json::json!({"type": "array", "minItems": 1, "maxItems": 100, "items": filter});
    let combinator = |name: &str, operand: &serde_json::Value| {
        serde_json::json!({
            "title": name, "type": "object", "required": [name],
            "properties": { name: operand }, "additionalProperties": false
        })
    };
    let comparable = serde_json::json!({"type": ["number", "string"]});
    let schema = serde_json::json!({
        "description": "A payload filter: a condition on one value of the payload (its path \
          and one test), or `and`, `or`, `not` of filters (at most 8 deep, 64 parts).",
        "oneOf": [
            condition("eq", serde_json::json!({
                "type": ["null", "boolean", "number", "string", "array", "object"]
            })),
            condition("in", serde_json::json!({"type": "array", "minItems": 1, "maxItems": 100})),
            condition("gt", comparable.clone()),
            condition("gte", comparable.clone()),
            condition("lt", comparable.clone()),
            condition("lte", comparable),
            condition("exists", serde_json::json!({"type": "boolean"})),
            combinator("and", &list),
            combinator("or", &list),
            combinator("not", &filter),
        ]
    });
    // Every part is a schema utoipa's model reads (tested: the document names it).
    if let Ok(schema) = serde_json::from_value::<RefOr<Schema>>(schema) {
        components.schemas.insert("PayloadFilter".into(), schema);
    }
}

/// `EventTypeName` lists the declared names, and an event's body is one of the declared types
/// with its own payload schema, so a client (or a generator like schemathesis) can tell a
/// valid event from the document alone.
fn name_event_types(doc: &mut OpenApi, event_types: &EventTypes) {
    let catalogue = event_types.catalogue();
    if catalogue.is_empty() {
        return;
    }
    let Some(components) = doc.components.as_mut() else {
        return;
    };
    let names = catalogue.iter().map(|t| t.name.as_str());
    components.schemas.insert(
        "EventTypeName".into(),
        ObjectBuilder::new()
            .schema_type(Type::String)
            .description(Some("A declared webhook's name."))
            .enum_values(Some(names))
            .into(),
    );
    // The handler's own description of the body's fields stays; only `event_type` and
    // `payload` are narrowed, per type.
    let Some(RefOr::T(Schema::Object(declared))) = components.schemas.get("CreateEvent") else {
        return;
    };
    let declared = declared.clone();
    let mut body = OneOfBuilder::new().description(declared.description.clone());
    for event_type in catalogue.iter().take_while(|t| !t.operational) {
        // One variant per version: the newest's `version` may be left out, an older one's
        // must be given; an unversioned type takes none.
        let newest = event_type.version();
        let versions: Vec<(Option<&str>, &str)> = if event_type.versions.is_empty() {
            vec![(None, event_type.body_schema.as_str())]
        } else {
            event_type
                .versions
                .iter()
                .map(|v| (Some(v.version.as_str()), v.body_schema.as_str()))
                .collect()
        };
        for (version, body_schema) in versions {
            let mut variant = declared.clone();
            variant.title = Some(match version {
                Some(v) if Some(v) != newest => format!("{}@{v}", event_type.name),
                _ => event_type.name.clone(),
            });
            variant.properties.insert(
                "event_type".into(),
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .enum_values(Some([event_type.name.as_str()]))
                    .into(),
            );
            variant
                .properties
                .insert("payload".into(), Ref::from_schema_name(body_schema).into());
            // Null (or no `version`) means the newest, so only the newest's variant takes it.
            let version_schema = match version {
                Some(v) if Some(v) == newest => ObjectBuilder::new()
                    .schema_type(SchemaType::from_iter([Type::String, Type::Null]))
                    .enum_values(Some([serde_json::Value::from(v), serde_json::Value::Null])),
                Some(v) => ObjectBuilder::new()
                    .schema_type(Type::String)
                    .enum_values(Some([v])),
                None => ObjectBuilder::new().schema_type(Type::Null),
            };
            variant
                .properties
                .insert("version".into(), version_schema.into());
            if version.is_some() && version != newest {
                variant.required.push("version".into());
            }
            body = body.item(variant);
        }
    }
    components
        .schemas
        .insert("CreateEvent".into(), Schema::OneOf(body.build()).into());
    pin_versions(components, event_types);
}

/// An endpoint's `version` is one a webhook declares (`VersionName`) or null (the default);
/// with none declared, it can only be null or left out.
fn pin_versions(components: &mut utoipa::openapi::Components, event_types: &EventTypes) {
    let pins = event_types.pins();
    let pin = if pins.is_empty() {
        ObjectBuilder::new()
            .schema_type(Type::Null)
            .description(Some("No webhook declares versions."))
    } else {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .description(Some("A version some webhook declares (a date)."))
            .enum_values(Some(pins))
    };
    components.schemas.insert("VersionName".into(), pin.into());
    for body in ["CreateEndpoint", "UpdateEndpoint"] {
        let Some(RefOr::T(Schema::Object(object))) = components.schemas.get_mut(body) else {
            continue;
        };
        let Some(RefOr::T(Schema::Object(field))) = object.properties.get("version") else {
            continue;
        };
        let any = OneOfBuilder::new()
            .item(Ref::from_schema_name("VersionName"))
            .item(ObjectBuilder::new().schema_type(Type::Null))
            .description(field.description.clone());
        object
            .properties
            .insert("version".into(), Schema::OneOf(any.build()).into());
    }
}

/// No id, query value or text field may hold U+0000 (see [`super::nul`]): every free-text
/// string (no pattern, enum or format of its own) of a parameter or a request body's schema
/// says so with a pattern, and every operation
/// that reads parameters or a body documents the 422 that refuses it.
fn text_without_nul(doc: &mut OpenApi) {
    use utoipa::openapi::schema::SchemaType;
    fn restrict(schema: &mut RefOr<Schema>) {
        let RefOr::T(Schema::Object(object)) = schema else {
            return;
        };
        let text = match &object.schema_type {
            SchemaType::Type(t) => *t == Type::String,
            SchemaType::Array(types) => types.contains(&Type::String),
            SchemaType::AnyValue => false,
        };
        if text
            && object.pattern.is_none()
            && object.enum_values.is_none()
            && object.format.is_none()
        {
            object.pattern = Some(super::nul::NO_NUL.into());
        }
    }
    let mut bodies = Vec::new();
    for operation in operations(doc) {
        let contents = operation.request_body.iter().flat_map(|body| match body {
            RefOr::T(body) => body.content.values().collect(),
            RefOr::Ref(_) => Vec::new(),
        });
        bodies.extend(contents.filter_map(|content| match content {
            RefOr::T(content) => match &content.schema {
                Some(RefOr::Ref(r)) => r.ref_location.rsplit('/').next().map(str::to_owned),
                _ => None,
            },
            RefOr::Ref(_) => None,
        }));
        let parameters = operation.parameters.iter_mut().flatten();
        let mut reads_text = operation.request_body.is_some();
        for parameter in parameters {
            reads_text = true;
            if let RefOr::T(parameter) = parameter {
                parameter.schema.as_mut().map(restrict);
            }
        }
        if reads_text {
            operation
                .responses
                .responses
                .entry("422".into())
                .or_insert_with(|| problem("A value is invalid, or text holds U+0000"));
        }
    }
    // The bodies' own text fields; what herald answers is not constrained here.
    let schemas = doc.components.iter_mut().flat_map(|c| c.schemas.iter_mut());
    for (_, schema) in schemas.filter(|(name, _)| bodies.contains(name)) {
        if let RefOr::T(Schema::Object(object)) = schema {
            object.properties.values_mut().for_each(restrict);
        }
    }
}

/// Every operation behind a token can answer 401 and 503 (the database is unavailable), and every operation under a tenant 404 (the
/// answer to another tenant's credential too, which learns nothing): said once here, not in
/// each handler's attribute.
fn credential_answers(doc: &mut OpenApi) {
    for (path, item) in doc.paths.paths.iter_mut() {
        let scoped = path.starts_with("/api/v1/tenants/{tenant}");
        for operation in item_operations(item) {
            if operation.security.as_ref().is_some_and(|s| !s.is_empty()) {
                operation
                    .responses
                    .responses
                    .entry("401".into())
                    .or_insert_with(|| problem("Missing, unknown, revoked or expired credential"));
                operation
                    .responses
                    .responses
                    .entry("503".into())
                    .or_insert_with(|| {
                        problem("The database is unavailable; `Retry-After` says when to try again")
                    });
            }
            if scoped {
                operation
                    .responses
                    .responses
                    .entry("404".into())
                    .or_insert_with(|| {
                        problem("No such tenant, or the credential is another tenant's")
                    });
            }
        }
    }
}

/// Every operation that reads a JSON body can answer 400 (not JSON), 413 (over 1 MiB) and 415
/// (not `application/json`), each as a problem.
fn body_answers(doc: &mut OpenApi) {
    for operation in operations(doc) {
        if operation.request_body.is_none() {
            continue;
        }
        for (status, description) in [
            ("400", "The body is not JSON"),
            ("413", "The body is larger than 1 MiB"),
            ("415", "The body is not `application/json`"),
        ] {
            operation
                .responses
                .responses
                .entry(status.into())
                .or_insert_with(|| problem(description));
        }
    }
}

fn problem(description: &str) -> RefOr<utoipa::openapi::Response> {
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/problem+json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("Problem")))
                .build(),
        )
        .into()
}

/// From an operation that creates something, by status, to the operations that take its id:
/// (operation, status, parameter, where the id is in the answer, operations).
const LINKS: &[(&str, &str, &str, &str, &[&str])] = &[
    (
        "create_endpoint",
        "201",
        "endpoint",
        "$response.body#/id",
        &[
            "get_endpoint",
            "update_endpoint",
            "delete_endpoint",
            "get_secret",
            "rotate_secret",
            "get_keys",
            "rotate_keys",
            "send_test",
            "create_replay",
        ],
    ),
    (
        "create_event",
        "202",
        "event",
        "$response.body#/id",
        &["get_event"],
    ),
    (
        "send_test",
        "200",
        "delivery",
        "$response.body#/delivery_id",
        &["get_delivery", "retry_delivery"],
    ),
    (
        "create_replay",
        "202",
        "replay",
        "$response.body#/id",
        &["get_replay"],
    ),
    (
        "create_token",
        "201",
        "token",
        "$response.body#/id",
        &["revoke_token"],
    ),
];

fn link_created_objects(doc: &mut OpenApi) {
    for operation in operations(doc) {
        let Some(id) = operation.operation_id.clone() else {
            continue;
        };
        for (_, status, parameter, value, targets) in LINKS.iter().filter(|l| l.0 == id) {
            let Some(RefOr::T(response)) = operation.responses.responses.get_mut(*status) else {
                continue;
            };
            for target in *targets {
                response.links.insert(
                    target.to_string(),
                    LinkBuilder::new()
                        .operation_id(*target)
                        .parameter("tenant", "$request.path.tenant")
                        .parameter(*parameter, *value)
                        .build()
                        .into(),
                );
            }
        }
    }
}

fn operations(doc: &mut OpenApi) -> impl Iterator<Item = &mut Operation> {
    doc.paths.paths.values_mut().flat_map(item_operations)
}

fn item_operations(item: &mut PathItem) -> impl Iterator<Item = &mut Operation> {
    [
        &mut item.get,
        &mut item.put,
        &mut item.post,
        &mut item.delete,
        &mut item.patch,
    ]
    .into_iter()
    .flatten()
}
