//! Declaring a webhook: its name, method, typed body and documentation.

use std::fmt;
use std::marker::PhantomData;

use serde::Serialize;
use serde::de::DeserializeOwned;
use utoipa::ToSchema;
use utoipa::openapi::{RefOr, Schema};

use crate::naming;

/// The HTTP method a webhook is sent with. `POST` unless declared otherwise.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Method {
    /// `POST`, the default and by far the most common.
    #[default]
    Post,
    /// `PUT`.
    Put,
    /// `PATCH`.
    Patch,
    /// `DELETE`.
    Delete,
    /// `GET` (the payload still travels as a JSON body).
    Get,
}

impl Method {
    /// The method's name as it appears on the wire, e.g. `"POST"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Patch => "PATCH",
            Method::Delete => "DELETE",
            Method::Get => "GET",
        }
    }

    pub(crate) fn to_openapi(self) -> utoipa::openapi::HttpMethod {
        use utoipa::openapi::HttpMethod;
        match self {
            Method::Post => HttpMethod::Post,
            Method::Put => HttpMethod::Put,
            Method::Patch => HttpMethod::Patch,
            Method::Delete => HttpMethod::Delete,
            Method::Get => HttpMethod::Get,
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A type that can be the body of a webhook: it serializes to JSON and describes itself as a
/// JSON Schema, so what is documented is exactly what is sent.
///
/// Implemented for every type that derives `serde::Serialize` and `utoipa::ToSchema`.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be a webhook body",
    label = "this type must derive `serde::Serialize` and `utoipa::ToSchema`",
    note = "add `#[derive(serde::Serialize, utoipa::ToSchema)]` to the definition of `{Self}`"
)]
pub trait Payload: 'static {
    /// The body as JSON, exactly as it goes on the wire.
    fn to_json(&self) -> serde_json::Result<serde_json::Value>;

    /// The body as JSON text, its fields in the order the type declares them.
    fn to_json_text(&self) -> serde_json::Result<String>;

    #[doc(hidden)]
    /// The body's schema, its name under `components.schemas`, and the schemas it refers to.
    fn body_schema() -> BodySchema;
}

// No supertraits and `do_not_recommend`: otherwise rustc reports the missing `ToSchema` or
// `Serialize` it finds inside this impl and never shows the message above.
#[diagnostic::do_not_recommend]
impl<T: Serialize + ToSchema + 'static> Payload for T {
    fn to_json(&self) -> serde_json::Result<serde_json::Value> {
        serde_json::to_value(self)
    }

    fn to_json_text(&self) -> serde_json::Result<String> {
        serde_json::to_string(self)
    }

    fn body_schema() -> BodySchema {
        let mut components = Vec::new();
        T::schemas(&mut components);
        BodySchema {
            name: T::name().into_owned(),
            schema: T::schema(),
            components,
            json: None,
        }
    }
}

/// Anything that declares a webhook whose body is [`Declare::Payload`]: a [`Webhook`] built by
/// hand, or the unit struct that `#[webhook]` makes of a function.
pub trait Declare {
    /// The body type; sending this webhook takes exactly this type.
    type Payload: Payload;

    /// The full declaration.
    fn declare(&self) -> Webhook<Self::Payload>;

    /// The webhook's name, its event type, without building the whole declaration (sending
    /// calls this for every event).
    fn name(&self) -> std::borrow::Cow<'static, str> {
        self.declare().declaration().name().to_owned().into()
    }

    /// The version of the body, for a versioned webhook, without building the whole
    /// declaration.
    fn version(&self) -> Option<std::borrow::Cow<'static, str>> {
        self.declare()
            .declaration()
            .version()
            .map(|v| v.to_owned().into())
    }
}

/// A webhook declaration with a body of type `T`.
///
/// Built with [`Webhook::post`] (or another method) and refined with the builder methods; the
/// `#[webhook]` attribute macro writes the same calls for you.
///
/// ```
/// use herald_core::Webhook;
///
/// #[derive(serde::Serialize, utoipa::ToSchema)]
/// struct Invoice { id: String, cents: u64 }
///
/// let invoice_paid = Webhook::<Invoice>::post("invoice.paid")
///     .description("Sent once an invoice is paid in full.")
///     .tag("billing");
/// assert_eq!(invoice_paid.declaration().summary(), "Invoice.Paid");
/// assert_eq!(invoice_paid.declaration().operation_id(), "invoice_paid");
/// ```
pub struct Webhook<T> {
    declaration: Declaration,
    // `fn() -> T`: a declaration holds no `T`, so it is Send + Sync whatever `T` is.
    payload: PhantomData<fn() -> T>,
}

impl<T> Clone for Webhook<T> {
    fn clone(&self) -> Self {
        Webhook {
            declaration: self.declaration.clone(),
            payload: PhantomData,
        }
    }
}

impl<T> fmt::Debug for Webhook<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Webhook").field(&self.declaration).finish()
    }
}

impl<T: Payload> Declare for Webhook<T> {
    type Payload = T;

    fn declare(&self) -> Webhook<T> {
        self.clone()
    }

    fn name(&self) -> std::borrow::Cow<'static, str> {
        self.declaration.name.clone().into()
    }

    fn version(&self) -> Option<std::borrow::Cow<'static, str>> {
        self.declaration.version.clone().map(Into::into)
    }
}

impl<T: Payload> Webhook<T> {
    /// A webhook sent with `method` under `name` (any string, e.g. `new-subscription`).
    ///
    /// The summary and `operationId` are derived from the name; set them to override.
    pub fn new(method: Method, name: impl Into<String>) -> Self {
        let name = name.into();
        Webhook {
            declaration: Declaration {
                summary: naming::summary(&name),
                operation_id: naming::operation_id(&name),
                method,
                name,
                description: None,
                tags: Vec::new(),
                deprecated: false,
                headers: Vec::new(),
                responses: Vec::new(),
                example: None,
                body: T::body_schema(),
                version: None,
                previous: None,
            },
            payload: PhantomData,
        }
    }

    /// A webhook sent with `POST`.
    pub fn post(name: impl Into<String>) -> Self {
        Self::new(Method::Post, name)
    }

    /// A webhook sent with `PUT`.
    pub fn put(name: impl Into<String>) -> Self {
        Self::new(Method::Put, name)
    }

    /// A webhook sent with `PATCH`.
    pub fn patch(name: impl Into<String>) -> Self {
        Self::new(Method::Patch, name)
    }

    /// A webhook sent with `DELETE`.
    pub fn delete(name: impl Into<String>) -> Self {
        Self::new(Method::Delete, name)
    }

    /// A webhook sent with `GET`.
    pub fn get(name: impl Into<String>) -> Self {
        Self::new(Method::Get, name)
    }
}

impl<T> Webhook<T> {
    /// Sets the one-line summary (default: the name in title case, as FastAPI does).
    pub fn summary(mut self, summary: impl Into<String>) -> Self {
        self.declaration.summary = summary.into();
        self
    }

    /// Sets the `operationId` (default: the name with every non-identifier character as `_`).
    pub fn operation_id(mut self, operation_id: impl Into<String>) -> Self {
        self.declaration.operation_id = operation_id.into();
        self
    }

    /// Sets the description: when the webhook is sent and what it means (Markdown).
    pub fn description(mut self, description: impl Into<String>) -> Self {
        let description = description.into();
        self.declaration.description = (!description.trim().is_empty()).then_some(description);
        self
    }

    /// Adds a tag, which groups the webhook in the docs.
    pub fn tag(mut self, tag: impl Into<String>) -> Self {
        self.declaration.tags.push(tag.into());
        self
    }

    /// Marks the webhook deprecated: still sent, but receivers should stop relying on it.
    pub fn deprecated(mut self, deprecated: bool) -> Self {
        self.declaration.deprecated = deprecated;
        self
    }

    /// Documents one more request header the receiver may see (beyond the signature headers,
    /// which every webhook documents).
    pub fn header(mut self, name: impl Into<String>, description: impl Into<String>) -> Self {
        self.declaration.headers.push(HeaderDoc {
            name: name.into(),
            description: description.into(),
        });
        self
    }

    /// Documents a response the receiver may return, e.g. `410` to unsubscribe.
    ///
    /// Any `2xx` counts as received; unless a `2xx` status is declared here, the document says so
    /// under `2XX`.
    pub fn response(mut self, status: u16, description: impl Into<String>) -> Self {
        self.declaration.responses.push(ResponseDoc {
            status,
            description: description.into(),
        });
        self
    }

    /// Sets the version of the body this declaration describes, a date `YYYY-MM-DD` (e.g.
    /// `2026-12-01`). Declare each version of one webhook under the same name; an endpoint
    /// pins a date and receives, of each webhook, the newest version on or before it.
    pub fn version(mut self, version: impl Into<String>) -> Self {
        self.declaration.version = Some(version.into());
        self
    }

    /// The type-erased declaration, as the catalog and the document see it.
    pub fn declaration(&self) -> &Declaration {
        &self.declaration
    }

    /// Gives up the body type, keeping the declaration.
    pub fn into_declaration(self) -> Declaration {
        self.declaration
    }
}

impl<T: Payload + DeserializeOwned> Webhook<T> {
    /// Declares the version before this one, `older`, with the function that turns this
    /// version's body into it. The compiler checks that `convert` takes this body and gives
    /// `older`'s; herald calls it for every endpoint pinned to `older` (or to a version before
    /// it, through that version's own `previous`).
    ///
    /// Declaring this webhook then declares `older` too (and the versions before it).
    ///
    /// ```
    /// use herald_core::Webhook;
    ///
    /// #[derive(serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
    /// struct PlanV1 { plan: String }
    /// #[derive(serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
    /// struct PlanV2 { plan: String, seats: u32 }
    ///
    /// let v1 = Webhook::<PlanV1>::post("plan.changed").version("2026-01-01");
    /// let v2 = Webhook::<PlanV2>::post("plan.changed")
    ///     .version("2026-12-01")
    ///     .previous(v1, |new: PlanV2| PlanV1 { plan: new.plan });
    /// let older = v2.declaration().previous_version();
    /// assert_eq!(older, Some("2026-01-01"));
    /// ```
    pub fn previous<U: Payload>(
        mut self,
        older: impl Declare<Payload = U>,
        convert: impl Fn(T) -> U + Send + Sync + 'static,
    ) -> Self {
        let older = older.declare().into_declaration();
        let convert = move |value: serde_json::Value| -> Result<Converted, String> {
            let body: T = serde_json::from_value(value)
                .map_err(|e| format!("the payload does not read as this version's body: {e}"))?;
            let older = convert(body);
            let serialized =
                |e: serde_json::Error| format!("the converted payload does not serialize: {e}");
            Ok(Converted {
                version: String::new(),
                body: older.to_json().map_err(serialized)?,
                text: older.to_json_text().map_err(serialized)?,
            })
        };
        self.declaration.previous = Some(Previous {
            declaration: Box::new(older),
            convert: Conversion(std::sync::Arc::new(convert)),
        });
        self
    }
}

impl<T: Payload> Webhook<T> {
    /// Sets an example body, shown in the docs and used as the test payload.
    ///
    /// It is typed, so the example cannot drift from the schema. A value that fails to serialize
    /// is reported when the document is built.
    pub fn example(mut self, example: T) -> Self {
        self.declaration.example = Some(example.to_json().map_err(|e| e.to_string()));
        self
    }
}

/// A declared webhook with its body type erased: what the catalog stores and the OpenAPI
/// document is built from.
#[derive(Clone, Debug, PartialEq)]
pub struct Declaration {
    pub(crate) name: String,
    pub(crate) method: Method,
    pub(crate) operation_id: String,
    pub(crate) summary: String,
    pub(crate) description: Option<String>,
    pub(crate) tags: Vec<String>,
    pub(crate) deprecated: bool,
    pub(crate) headers: Vec<HeaderDoc>,
    pub(crate) responses: Vec<ResponseDoc>,
    pub(crate) example: Option<Result<serde_json::Value, String>>,
    pub(crate) body: BodySchema,
    /// The date of the body's version, for a versioned webhook.
    pub(crate) version: Option<String>,
    /// The version before this one and how to convert a body to it.
    pub(crate) previous: Option<Previous>,
}

/// The version before a declaration's, with the conversion to it.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Previous {
    pub(crate) declaration: Box<Declaration>,
    pub(crate) convert: Conversion,
}

/// A body converted from one version's JSON to the previous version's.
#[derive(Clone)]
pub(crate) struct Conversion(
    pub(crate) std::sync::Arc<dyn Fn(serde_json::Value) -> Result<Converted, String> + Send + Sync>,
);

/// A payload converted to an older version.
#[derive(Clone, Debug, PartialEq)]
pub struct Converted {
    /// The version it was converted to.
    pub version: String,
    /// The body, to validate.
    pub body: serde_json::Value,
    /// The body as sent: JSON text with the fields in the order the older type declares them.
    pub text: String,
}

impl fmt::Debug for Conversion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Conversion")
    }
}

impl PartialEq for Conversion {
    fn eq(&self, other: &Self) -> bool {
        std::sync::Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Declaration {
    /// The webhook's name, its key under `webhooks` (e.g. `new-subscription`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The HTTP method it is sent with.
    pub fn method(&self) -> Method {
        self.method
    }

    /// Its `operationId`.
    pub fn operation_id(&self) -> &str {
        &self.operation_id
    }

    /// Its one-line summary.
    pub fn summary(&self) -> &str {
        &self.summary
    }

    /// Its description, if any.
    pub fn description(&self) -> Option<&str> {
        self.description.as_deref()
    }

    /// Its tags.
    pub fn tags(&self) -> &[String] {
        &self.tags
    }

    /// Whether it is deprecated.
    pub fn is_deprecated(&self) -> bool {
        self.deprecated
    }

    /// The example body, if one was declared and it serialized.
    pub fn example(&self) -> Option<&serde_json::Value> {
        self.example.as_ref().and_then(|e| e.as_ref().ok())
    }

    /// The date of the body's version, for a versioned webhook.
    pub fn version(&self) -> Option<&str> {
        self.version.as_deref()
    }

    /// The version this one converts to, if it declares one.
    pub fn previous_version(&self) -> Option<&str> {
        self.previous.as_ref().and_then(|p| p.declaration.version())
    }

    /// Converts a body of this version to the previous version's, if this declaration has a
    /// conversion (declarations read from an OpenAPI file have none).
    pub fn convert_to_previous(
        &self,
        body: serde_json::Value,
    ) -> Option<Result<serde_json::Value, String>> {
        self.previous
            .as_ref()
            .map(|p| (p.convert.0)(body).map(|c| c.body))
    }

    /// The name of the body's schema under `components.schemas`.
    pub fn body_schema_name(&self) -> &str {
        &self.body.name
    }

    /// The body's JSON Schema as one self-contained document (draft 2020-12): a `$ref` to the
    /// body's schema, with every schema it needs under `components.schemas`, so the same
    /// `#/components/schemas/…` references resolve as they do in the OpenAPI document.
    pub fn json_schema(&self) -> serde_json::Value {
        if let Some(schemas) = &self.body.json {
            return serde_json::json!({
                "$schema": "https://json-schema.org/draft/2020-12/schema",
                "$ref": format!("#/components/schemas/{}", self.body.name),
                "components": { "schemas": schemas },
            });
        }
        let mut schemas = serde_json::Map::new();
        let own = (&self.body.name, &self.body.schema);
        for (name, schema) in
            std::iter::once(own).chain(self.body.components.iter().map(|(n, s)| (n, s)))
        {
            // utoipa's model always serializes; Null would only make validation stricter.
            schemas.insert(
                name.clone(),
                serde_json::to_value(schema).unwrap_or_default(),
            );
        }
        serde_json::json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "$ref": format!("#/components/schemas/{}", self.body.name),
            "components": { "schemas": schemas },
        })
    }
}

/// A documented request header.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct HeaderDoc {
    pub(crate) name: String,
    pub(crate) description: String,
}

/// A documented response from the receiver.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct ResponseDoc {
    pub(crate) status: u16,
    pub(crate) description: String,
}

/// The body's schema and every schema it refers to.
#[doc(hidden)]
#[derive(Clone, Debug, PartialEq)]
pub struct BodySchema {
    pub(crate) name: String,
    pub(crate) schema: RefOr<Schema>,
    pub(crate) components: Vec<(String, RefOr<Schema>)>,
    /// For a body read from an OpenAPI file: the same schemas as written there, every keyword
    /// kept (utoipa's model has no place for some), which validation uses.
    pub(crate) json: Option<serde_json::Map<String, serde_json::Value>>,
}
