//! The arguments of `#[webhook(...)]`.

use proc_macro2::TokenStream;
use quote::quote;
use syn::ext::IdentExt;
use syn::parse::{Parse, ParseStream};
use syn::{Expr, Ident, LitInt, LitStr, Token};

const USAGE: &str = "expected `#[webhook(post, \"new-subscription\")]`: an HTTP method, then the \
                     webhook's name as a string";
const METHODS: [(&str, &str); 5] = [
    ("post", "Post"),
    ("put", "Put"),
    ("patch", "Patch"),
    ("delete", "Delete"),
    ("get", "Get"),
];
const KEYS: &str = "`tag = \"…\"`, `deprecated`, `summary = \"…\"`, `operation_id = \"…\"`, \
                    `header(name = \"…\", description = \"…\")`, \
                    `response(status = 410, description = \"…\")`, `example = …`, \
                    `version = \"YYYY-MM-DD\"`, `previous = older_webhook` or `convert = function`";

pub(crate) struct Args {
    method: Ident,
    pub(crate) name: LitStr,
    pub(crate) tags: Vec<LitStr>,
    pub(crate) deprecated: bool,
    pub(crate) summary: Option<LitStr>,
    pub(crate) operation_id: Option<LitStr>,
    pub(crate) headers: Vec<(LitStr, LitStr)>,
    pub(crate) responses: Vec<(LitInt, LitStr)>,
    pub(crate) example: Option<Expr>,
    pub(crate) version: Option<LitStr>,
    pub(crate) previous: Option<Expr>,
    pub(crate) convert: Option<Expr>,
}

impl Args {
    /// The `herald::Method` variant, e.g. `::herald::Method::Post`.
    pub(crate) fn method_path(&self) -> TokenStream {
        let lower = self.method.to_string();
        let variant = METHODS
            .iter()
            .find(|(m, _)| *m == lower)
            .map(|(_, v)| Ident::new(v, self.method.span()))
            .unwrap_or_else(|| self.method.clone());
        quote!(::herald::Method::#variant)
    }
}

impl Parse for Args {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        if input.is_empty() {
            return Err(input.error(USAGE));
        }
        let method = input
            .call(Ident::parse_any)
            .map_err(|e| syn::Error::new(e.span(), USAGE))?;
        let lower = method.to_string().to_lowercase();
        if !METHODS.iter().any(|(m, _)| *m == lower) {
            return Err(syn::Error::new(
                method.span(),
                format!(
                    "unknown HTTP method `{method}`; a webhook is sent with one of `post`, \
                     `put`, `patch`, `delete` or `get`"
                ),
            ));
        }
        let method = Ident::new(&lower, method.span());
        let name = if input.is_empty() {
            return Err(input.error(USAGE));
        } else {
            input.parse::<Token![,]>()?;
            input
                .parse::<LitStr>()
                .map_err(|e| syn::Error::new(e.span(), USAGE))?
        };
        if name.value().trim().is_empty() {
            return Err(syn::Error::new(
                name.span(),
                "a webhook's name cannot be empty",
            ));
        }

        let mut args = Args {
            method,
            name,
            tags: Vec::new(),
            deprecated: false,
            summary: None,
            operation_id: None,
            headers: Vec::new(),
            responses: Vec::new(),
            example: None,
            version: None,
            previous: None,
            convert: None,
        };
        while !input.is_empty() {
            input.parse::<Token![,]>()?;
            if input.is_empty() {
                break;
            }
            args.parse_option(input)?;
        }
        if args.previous.is_some() && args.version.is_none() {
            return Err(syn::Error::new(
                args.name.span(),
                "`previous` needs `version = \"YYYY-MM-DD\"`: only a versioned webhook has a \
                 previous version",
            ));
        }
        if let (Some(convert), None) = (&args.convert, &args.previous) {
            return Err(syn::Error::new_spanned(
                convert,
                "`convert` needs `previous = older_webhook`: it converts this version's body \
                 to the previous version's",
            ));
        }
        Ok(args)
    }
}

impl Args {
    fn parse_option(&mut self, input: ParseStream<'_>) -> syn::Result<()> {
        let key = input.call(Ident::parse_any)?;
        match key.to_string().as_str() {
            "deprecated" => self.deprecated = true,
            "tag" => self.tags.push(value(input)?),
            "summary" => set_once(&mut self.summary, &key, value(input)?)?,
            "operation_id" => set_once(&mut self.operation_id, &key, value(input)?)?,
            "example" => {
                input.parse::<Token![=]>()?;
                set_once(&mut self.example, &key, input.parse()?)?;
            }
            "version" => set_once(&mut self.version, &key, value(input)?)?,
            "previous" => {
                input.parse::<Token![=]>()?;
                set_once(&mut self.previous, &key, input.parse()?)?;
            }
            "convert" => {
                input.parse::<Token![=]>()?;
                set_once(&mut self.convert, &key, input.parse()?)?;
            }
            "header" => {
                let mut fields = Fields::parse(input, &key, &["name", "description"])?;
                self.headers
                    .push((fields.string("name")?, fields.string("description")?));
            }
            "response" => {
                let mut fields = Fields::parse(input, &key, &["status", "description"])?;
                let status: LitInt = fields.take("status")?;
                let code: u16 = status.base10_parse()?;
                if !(100..=599).contains(&code) {
                    return Err(syn::Error::new(
                        status.span(),
                        "a response status is an HTTP status code, from 100 to 599",
                    ));
                }
                self.responses.push((status, fields.string("description")?));
            }
            other => {
                return Err(syn::Error::new(
                    key.span(),
                    format!("unknown argument `{other}`; expected {KEYS}"),
                ));
            }
        }
        Ok(())
    }
}

fn value(input: ParseStream<'_>) -> syn::Result<LitStr> {
    input.parse::<Token![=]>()?;
    input.parse()
}

fn set_once<T>(slot: &mut Option<T>, key: &Ident, value: T) -> syn::Result<()> {
    if slot.is_some() {
        return Err(syn::Error::new(
            key.span(),
            format!("`{key}` is given twice"),
        ));
    }
    *slot = Some(value);
    Ok(())
}

/// `(key = literal, ...)` after `header` or `response`.
struct Fields {
    owner: Ident,
    values: Vec<(Ident, syn::Lit)>,
}

impl Fields {
    fn parse(input: ParseStream<'_>, owner: &Ident, allowed: &[&str]) -> syn::Result<Self> {
        let content;
        syn::parenthesized!(content in input);
        let mut values = Vec::new();
        while !content.is_empty() {
            let key = content.call(Ident::parse_any)?;
            if !allowed.contains(&key.to_string().as_str()) {
                return Err(syn::Error::new(
                    key.span(),
                    format!(
                        "unknown field `{key}` in `{owner}(...)`; expected {}",
                        allowed.join(" and ")
                    ),
                ));
            }
            content.parse::<Token![=]>()?;
            values.push((key, content.parse()?));
            if !content.is_empty() {
                content.parse::<Token![,]>()?;
            }
        }
        Ok(Fields {
            owner: owner.clone(),
            values,
        })
    }

    fn take<T: Parse>(&mut self, key: &str) -> syn::Result<T> {
        let position = self.values.iter().position(|(k, _)| k == key);
        let Some(position) = position else {
            return Err(syn::Error::new(
                self.owner.span(),
                format!("`{}(...)` needs `{key} = …`", self.owner),
            ));
        };
        let (_, lit) = self.values.remove(position);
        syn::parse2(quote!(#lit))
    }

    fn string(&mut self, key: &str) -> syn::Result<LitStr> {
        self.take(key)
    }
}
