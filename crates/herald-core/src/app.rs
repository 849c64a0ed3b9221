//! Putting an application together: its documented routes, its webhooks and its docs.

use axum::Router;
use utoipa::openapi::OpenApi;
use utoipa_axum::router::OpenApiRouter;

use crate::catalog::Webhooks;
use crate::docs::Docs;
use crate::error::{Error, ErrorKind};
use crate::openapi;
use crate::webhook::Declare;

/// An application under construction: axum routes documented with utoipa-axum, the webhooks it
/// sends, and where its docs are served.
///
/// [`App::build`] checks everything and gives back one router and one OpenAPI 3.1 document.
pub struct App {
    base: OpenApi,
    routes: OpenApiRouter,
    webhooks: Webhooks,
    docs: Docs,
    /// Schema names that two sets of routes define differently, reported by [`App::build`].
    clashes: Vec<String>,
}

/// A checked application: serve [`router`](Self::router); the other fields are there for tests,
/// `herald openapi`, and the layers that send what is declared.
pub struct Built {
    /// Every route, the docs routes included.
    pub router: Router,
    /// The document served at the OpenAPI URL.
    pub openapi: OpenApi,
    /// The AsyncAPI 3.0 document of the same webhooks, served at the AsyncAPI URL.
    pub asyncapi: serde_json::Value,
    /// The catalog of declared webhooks.
    pub webhooks: Webhooks,
}

impl App {
    /// An application titled `title` at `version` (the document's `info`).
    pub fn new(title: &str, version: &str) -> Self {
        Self::with_openapi(openapi::empty(title, version))
    }

    /// An application whose document starts from `base`: its `info`, tags, security schemes and
    /// any paths or schemas it already has are kept.
    pub fn with_openapi(base: OpenApi) -> Self {
        App {
            base,
            routes: OpenApiRouter::new(),
            webhooks: Webhooks::new(),
            docs: Docs::default(),
            clashes: Vec::new(),
        }
    }

    /// Adds documented routes (utoipa-axum's `OpenApiRouter`, e.g. `routes!(read_users)`).
    ///
    /// Routes that need state get it first, as with axum: `routes.with_state(state)`.
    pub fn routes(mut self, routes: OpenApiRouter) -> Self {
        // Merging keeps the first of two schemas with one name: the other routes would be
        // documented with a schema that is not theirs. Remember it; `build` refuses it.
        self.clashes.extend(openapi::clashing_schemas(
            self.routes.get_openapi(),
            routes.get_openapi(),
        ));
        self.routes = self.routes.merge(routes);
        self
    }

    /// Declares one webhook: a function marked `#[webhook]` or a [`Webhook`](crate::Webhook).
    pub fn webhook(mut self, webhook: impl Declare) -> Self {
        self.webhooks = self.webhooks.webhook(webhook);
        self
    }

    /// Declares every webhook in `webhooks`.
    pub fn webhooks(mut self, webhooks: Webhooks) -> Self {
        self.webhooks = self.webhooks.merge(webhooks);
        self
    }

    /// The webhooks declared so far (the catalog a sending layer validates against).
    pub fn declared(&self) -> &Webhooks {
        &self.webhooks
    }

    /// Sets where the document and its viewers are served (default: `/openapi.json`, `/docs`,
    /// `/redoc`).
    pub fn docs(mut self, docs: Docs) -> Self {
        self.docs = docs;
        self
    }

    /// Checks the declarations and builds the router and the document.
    ///
    /// Fails on a duplicate webhook, a duplicate `operationId`, a schema name claimed by two
    /// different types, or an unusable docs path: errors that would otherwise ship a document
    /// that lies.
    pub fn build(self) -> Result<Built, Error> {
        if let Some(clash) = self.clashes.first() {
            return Err(Error::new(ErrorKind::ConflictingSchema, clash.clone()));
        }
        let (routes, documented) = self.routes.split_for_parts();
        let api = openapi::merge_routes(self.base, documented)?;
        let api = openapi::document(api, &self.webhooks)?;
        // Every map in the model is keyed by strings and examples are already JSON values, so
        // serializing cannot fail.
        #[allow(clippy::expect_used)]
        let serialized = serde_json::to_vec(&api).expect("an OpenApi always serializes");
        let asyncapi =
            crate::asyncapi::document(&api.info.title, &api.info.version, &self.webhooks);
        let docs = self.docs.router(
            &api.info.title,
            serialized.into(),
            asyncapi.to_string().into(),
        )?;
        Ok(Built {
            router: routes.merge(docs),
            openapi: api,
            asyncapi,
            webhooks: self.webhooks,
        })
    }
}
