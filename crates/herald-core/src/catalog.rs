//! The catalog: every webhook an application declares, by name.

use crate::webhook::{Declaration, Declare, Method};

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
    pub fn webhook(mut self, webhook: impl Declare) -> Self {
        self.declarations.push(webhook.declare().into_declaration());
        self
    }

    /// Adds a declaration made elsewhere in this crate (read from an OpenAPI file).
    pub(crate) fn push(&mut self, declaration: Declaration) {
        self.declarations.push(declaration);
    }

    /// Adds every webhook of `other`.
    pub fn merge(mut self, other: Webhooks) -> Self {
        self.declarations.extend(other.declarations);
        self
    }

    /// The declarations, in the order they were added.
    pub fn iter(&self) -> impl Iterator<Item = &Declaration> {
        self.declarations.iter()
    }

    /// The webhook declared as `name` with `method`.
    pub fn get(&self, name: &str, method: Method) -> Option<&Declaration> {
        self.declarations
            .iter()
            .find(|d| d.name() == name && d.method() == method)
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
