//! Building the OpenAPI 3.1 document: the application's routes plus its declared webhooks.

use std::collections::BTreeMap;
use std::collections::btree_map::Entry;

use utoipa::openapi::extensions::{Extensions, ExtensionsBuilder};
use utoipa::openapi::path::{Operation, OperationBuilder, ParameterBuilder, ParameterIn};
use utoipa::openapi::request_body::RequestBodyBuilder;
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::{
    ContentBuilder, Deprecated, OpenApi, OpenApiVersion, PathItem, Paths, Ref, RefOr, Required,
    Response, ResponsesBuilder, Schema,
};

use crate::catalog::Webhooks;
use crate::error::{Error, ErrorKind};
use crate::webhook::Declaration;

/// The headers every delivery carries, per the Standard Webhooks specification.
pub(crate) const SIGNATURE_HEADERS: [(&str, &str); 3] = [
    (
        "webhook-id",
        "The event's unique id. It is the same on every retry of one event, so a receiver can \
         drop duplicates by it.",
    ),
    (
        "webhook-timestamp",
        "When this attempt was signed, in seconds since the Unix epoch. Refuse requests whose \
         timestamp is more than five minutes from now: they may be replays.",
    ),
    (
        "webhook-signature",
        "Space-separated signatures of `{webhook-id}.{webhook-timestamp}.{body}`: `v1,<base64>` \
         is HMAC-SHA256 keyed with the endpoint's secret (the base64 after `whsec_`), \
         `v1a,<base64>` an Ed25519 signature verified with its public key (`whpk_`, also in the \
         tenant's JWKS document), for endpoints that chose Ed25519. While a key is being \
         rotated there is one per active key; accept the request if any matches.",
    ),
];

/// The header a versioned webhook's deliveries carry: the version of the body sent.
pub const VERSION_HEADER: (&str, &str) = (
    "herald-event-version",
    "The version of the body, a date: the newest version of this webhook on or before the \
     version the endpoint pins. Sent only for versioned webhooks.",
);

/// The operation extension that carries a webhook version's date, written by herald and read
/// back in `--spec` mode.
pub const VERSION_EXTENSION: &str = "x-herald-version";

const RECEIVED: &str = "Any 2xx status tells herald the webhook arrived. Any other status, or no \
                        answer within the timeout, is retried with backoff.";

/// Adds `webhooks` to `api`: one operation each under the top-level `webhooks`, their body
/// schemas under `components.schemas`, and sets `openapi: 3.1.0`.
///
/// Fails, naming every offender, when two webhooks share a name and method, when two operations
/// (routes or webhooks) share an `operationId`, when two different schemas claim one component
/// name, or when a declared example does not serialize.
pub fn document(mut api: OpenApi, webhooks: &Webhooks) -> Result<OpenApi, Error> {
    api.openapi = OpenApiVersion::Version31;
    check_unique_webhooks(webhooks)?;
    webhooks.check_versions()?;

    let mut components = api.components.take().unwrap_or_default();
    let mut paths = api.webhooks.take().unwrap_or_default();
    for declaration in webhooks.iter() {
        let body = &declaration.body;
        let own = (body.name.clone(), body.schema.clone());
        for (name, schema) in std::iter::once(own).chain(body.components.iter().cloned()) {
            let who = format!("webhook `{}`", declaration.name());
            add_schema(&mut components.schemas, name, schema, &who)?;
        }
        paths.add_path_operation(
            webhooks.key(declaration),
            vec![declaration.method().to_openapi()],
            operation(webhooks, declaration)?,
        );
    }
    api.components = Some(components);
    api.webhooks = Some(paths);

    check_unique_operation_ids(&api)?;
    Ok(api)
}

fn operation(webhooks: &Webhooks, declaration: &Declaration) -> Result<Operation, Error> {
    let example = match &declaration.example {
        None => None,
        Some(Ok(value)) => Some(value.clone()),
        Some(Err(cause)) => {
            return Err(Error::new(
                ErrorKind::InvalidExample,
                format!(
                    "the example body of webhook `{}` does not serialize to JSON: {cause}",
                    declaration.name()
                ),
            ));
        }
    };
    let body = RequestBodyBuilder::new()
        .required(Some(Required::True))
        .content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name(&declaration.body.name)))
                .example(example)
                .build(),
        )
        .build();

    let string = || ObjectBuilder::new().schema_type(Type::String).build();
    let mut parameters: Vec<_> = SIGNATURE_HEADERS
        .iter()
        .map(|(name, description)| {
            ParameterBuilder::new()
                .name(*name)
                .parameter_in(ParameterIn::Header)
                .required(Required::True)
                .description(Some(*description))
                .schema(Some(string()))
                .build()
        })
        .collect();
    if declaration.version().is_some() {
        let (name, description) = VERSION_HEADER;
        parameters.push(
            ParameterBuilder::new()
                .name(name)
                .parameter_in(ParameterIn::Header)
                .required(Required::True)
                .description(Some(description))
                .schema(Some(string()))
                .build(),
        );
    }
    parameters.extend(declaration.headers.iter().map(|header| {
        ParameterBuilder::new()
            .name(&header.name)
            .parameter_in(ParameterIn::Header)
            .required(Required::False)
            .description(Some(&header.description))
            .schema(Some(string()))
            .build()
    }));

    let mut responses = ResponsesBuilder::new();
    if !declaration
        .responses
        .iter()
        .any(|r| (200..300).contains(&r.status))
    {
        responses = responses.response("2XX", Response::new(RECEIVED));
    }
    for response in &declaration.responses {
        responses = responses.response(
            response.status.to_string(),
            Response::new(&response.description),
        );
    }

    Ok(OperationBuilder::new()
        .operation_id(Some(webhooks.operation_id(declaration)))
        .summary(Some(webhooks.summary(declaration)))
        .extensions(versioned(declaration))
        .description(declaration.description())
        .tags((!declaration.tags().is_empty()).then(|| declaration.tags().to_vec()))
        .deprecated(declaration.is_deprecated().then_some(Deprecated::True))
        .parameters(Some(parameters))
        // Receivers authenticate herald by the signature headers, not by HTTP auth: say so
        // explicitly rather than inherit the application's own security requirements.
        .securities(Some(Vec::new()))
        .request_body(Some(body))
        .responses(responses.build())
        .build())
}

/// `x-herald-version` for a versioned declaration.
fn versioned(declaration: &Declaration) -> Option<Extensions> {
    let version = declaration.version()?;
    Some(
        ExtensionsBuilder::new()
            .add(VERSION_EXTENSION, version)
            .build(),
    )
}

fn add_schema(
    schemas: &mut BTreeMap<String, RefOr<Schema>>,
    name: String,
    schema: RefOr<Schema>,
    who: &str,
) -> Result<(), Error> {
    match schemas.entry(name) {
        Entry::Vacant(slot) => {
            slot.insert(schema);
            Ok(())
        }
        Entry::Occupied(existing) if *existing.get() == schema => Ok(()),
        Entry::Occupied(existing) => Err(Error::new(
            ErrorKind::ConflictingSchema,
            format!(
                "{who} needs schema `{}`, but a different schema of that name is already in \
                 components.schemas; rename one of the types (e.g. `#[schema(as = Other)]`)",
                existing.key()
            ),
        )),
    }
}

fn check_unique_webhooks(webhooks: &Webhooks) -> Result<(), Error> {
    let mut seen = BTreeMap::new();
    let mut duplicates = Vec::new();
    for declaration in webhooks.iter() {
        let key = (
            declaration.name(),
            declaration.method(),
            declaration.version(),
        );
        if seen.insert(key, ()).is_some() {
            let version = declaration
                .version()
                .map(|v| format!(" version {v}"))
                .unwrap_or_default();
            duplicates.push(format!(
                "{} {}{version}",
                declaration.method(),
                declaration.name()
            ));
        }
    }
    if duplicates.is_empty() {
        return Ok(());
    }
    Err(Error::new(
        ErrorKind::DuplicateWebhook,
        format!(
            "webhook declared more than once: {}; each name and method (and version) must be \
             declared once",
            duplicates.join(", ")
        ),
    ))
}

fn check_unique_operation_ids(api: &OpenApi) -> Result<(), Error> {
    let mut owners: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    let sections = [("", Some(&api.paths)), ("webhook ", api.webhooks.as_ref())];
    for (prefix, paths) in sections {
        for (path, item) in paths.into_iter().flat_map(|p| p.paths.iter()) {
            for (method, operation) in operations(item) {
                if let Some(id) = operation.operation_id.as_deref() {
                    owners
                        .entry(id)
                        .or_default()
                        .push(format!("{prefix}{method} {path}"));
                }
            }
        }
    }
    let clashes: Vec<String> = owners
        .into_iter()
        .filter(|(_, places)| places.len() > 1)
        .map(|(id, places)| format!("`{id}` ({})", places.join(", ")))
        .collect();
    if clashes.is_empty() {
        return Ok(());
    }
    Err(Error::new(
        ErrorKind::DuplicateOperationId,
        format!(
            "operationId used more than once: {}; give one of each an `operation_id`",
            clashes.join("; ")
        ),
    ))
}

fn operations(item: &PathItem) -> impl Iterator<Item = (&str, &Operation)> {
    let fixed = [
        ("GET", &item.get),
        ("PUT", &item.put),
        ("POST", &item.post),
        ("DELETE", &item.delete),
        ("OPTIONS", &item.options),
        ("HEAD", &item.head),
        ("PATCH", &item.patch),
        ("TRACE", &item.trace),
        ("QUERY", &item.query),
    ];
    fixed
        .into_iter()
        .filter_map(|(method, op)| op.as_ref().map(|op| (method, op)))
        .chain(
            item.additional_operations
                .iter()
                .map(|(method, op)| (method.as_str(), op)),
        )
}

/// Adds what utoipa-axum collected from the routes (paths, schemas, security schemes, tags) to
/// `base`, refusing a schema name that `base` already uses for a different schema.
pub(crate) fn merge_routes(mut base: OpenApi, routes: OpenApi) -> Result<OpenApi, Error> {
    if let (Some(ours), Some(theirs)) = (&base.components, &routes.components) {
        let mut ours = ours.schemas.clone();
        for (name, schema) in &theirs.schemas {
            add_schema(&mut ours, name.clone(), schema.clone(), "a route")?;
        }
    }
    base.merge(routes);
    Ok(base)
}

/// Each schema name that `ours` and `theirs` (two sets of routes) both define, differently,
/// described with a path of each side so the user can tell which types they are.
pub(crate) fn clashing_schemas(ours: &OpenApi, theirs: &OpenApi) -> Vec<String> {
    let (Some(a), Some(b)) = (&ours.components, &theirs.components) else {
        return Vec::new();
    };
    let first_path = |doc: &OpenApi| {
        doc.paths
            .paths
            .keys()
            .next()
            .map_or_else(|| "no path".to_owned(), |p| format!("`{p}`"))
    };
    b.schemas
        .iter()
        .filter(|(name, schema)| a.schemas.get(*name).is_some_and(|mine| mine != *schema))
        .map(|(name, _)| {
            format!(
                "two sets of routes define schema `{name}` differently (the routes of {} and \
                 those of {}); rename one of the types (e.g. `#[schema(as = Other{name})]`)",
                first_path(ours),
                first_path(theirs)
            )
        })
        .collect()
}

/// An empty document for `title` and `version`, to add routes and webhooks to.
pub(crate) fn empty(title: &str, version: &str) -> OpenApi {
    utoipa::openapi::OpenApiBuilder::new()
        .info(utoipa::openapi::Info::new(title, version))
        .paths(Paths::new())
        .build()
}
