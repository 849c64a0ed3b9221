//! The `#[webhook]` attribute macro, re-exported and documented as `herald::webhook`.
//!
//! It turns a function such as
//!
//! ```ignore
//! /// Sent when a user subscribes.
//! #[webhook(post, "new-subscription")]
//! fn new_subscription(body: Subscription) {}
//! ```
//!
//! into a unit struct `new_subscription` implementing `herald::Declare`, whose declaration is
//! the same chain of `herald::Webhook` builder calls a user could write by hand.

mod args;
mod doc;

use proc_macro::TokenStream;
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{FnArg, ItemFn, ReturnType, parse_macro_input};

use crate::args::Args;

/// Declares a webhook from a function; see `herald::webhook` for the arguments.
#[proc_macro_attribute]
pub fn webhook(attr: TokenStream, item: TokenStream) -> TokenStream {
    let args = parse_macro_input!(attr as Args);
    let function = parse_macro_input!(item as ItemFn);
    expand(args, function)
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}

fn expand(args: Args, function: ItemFn) -> syn::Result<proc_macro2::TokenStream> {
    let body_type = body_type(&function)?;
    let ident = &function.sig.ident;
    let vis = &function.vis;
    let docs: Vec<_> = function
        .attrs
        .iter()
        .filter(|a| a.path().is_ident("doc"))
        .collect();
    let description = doc::description(&function.attrs);

    let method = args.method_path();
    let name = &args.name;
    let operation_id = match &args.operation_id {
        Some(id) => quote!(#id),
        None => {
            let id = ident.to_string();
            quote!(#id)
        }
    };
    let summary = match &args.summary {
        Some(summary) => quote!(#summary),
        None => {
            // `subscription_renewed_2026_01_01` is summarised as its webhook is; the document
            // tells the versions apart.
            let mut from = ident.to_string();
            if let Some(version) = &args.version {
                let suffix = format!("_{}", version.value().replace('-', "_"));
                if let Some(stem) = from.strip_suffix(&suffix) {
                    from = stem.to_owned();
                }
            }
            quote!(::herald::__private::summary(#from))
        }
    };
    let tags = args.tags.iter().map(|t| quote!(.tag(#t)));
    let deprecated = args.deprecated.then(|| quote!(.deprecated(true)));
    let headers = args
        .headers
        .iter()
        .map(|(name, description)| quote!(.header(#name, #description)));
    let responses = args
        .responses
        .iter()
        .map(|(status, description)| quote!(.response(#status, #description)));
    let example = args.example.as_ref().map(|e| {
        // Spanned on the expression, so a value of the wrong type is reported where it is written.
        quote_spanned!(e.span()=> .example(#e))
    });
    let version = args.version.as_ref().map(|v| quote!(.version(#v)));
    // Sending asks for the version of every event: answered here, not by building the whole
    // declaration (its schema included), as the trait's default would.
    let version_of = match &args.version {
        Some(v) => quote!(::std::option::Option::Some(::std::borrow::Cow::Borrowed(#v))),
        None => quote!(::std::option::Option::None),
    };
    let version_of = quote! {
        fn version(&self) -> ::std::option::Option<::std::borrow::Cow<'static, str>> {
            #version_of
        }
    };
    let previous = args.previous.as_ref().map(|older| {
        let convert = match &args.convert {
            Some(convert) => quote_spanned!(convert.span()=> #convert),
            None => quote!(::core::convert::Into::into),
        };
        quote_spanned!(older.span()=> .previous(#older, #convert))
    });
    // Spanned on the type, so a body type that is not a `Payload` is reported on the argument.
    let payload = quote_spanned!(body_type.span()=> type Payload = #body_type;);

    Ok(quote! {
        #(#docs)*
        #[allow(non_camel_case_types)]
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
        #vis struct #ident;

        impl ::herald::Declare for #ident {
            #payload

            fn name(&self) -> ::std::borrow::Cow<'static, str> {
                ::std::borrow::Cow::Borrowed(#name)
            }

            #version_of

            fn declare(&self) -> ::herald::Webhook<Self::Payload> {
                ::herald::__private::new_webhook::<Self::Payload>(#method, #name)
                    .operation_id(#operation_id)
                    .summary(#summary)
                    .description(#description)
                    #(#tags)*
                    #deprecated
                    #(#headers)*
                    #(#responses)*
                    #example
                    #version
                    #previous
            }
        }
    })
}

/// The type of the function's one argument: the webhook's body.
fn body_type(function: &ItemFn) -> syn::Result<&syn::Type> {
    const SHAPE: &str = "a webhook function takes exactly one argument, its body, e.g. \
                         `fn new_subscription(body: Subscription) {}`";
    let sig = &function.sig;
    if !sig.generics.params.is_empty() {
        return Err(syn::Error::new(
            sig.generics.span(),
            "a webhook function cannot be generic: name one concrete body type",
        ));
    }
    if let Some(asyncness) = sig.asyncness {
        return Err(syn::Error::new(
            asyncness.span(),
            "a webhook function is a declaration and is never called: drop `async`",
        ));
    }
    if let ReturnType::Type(_, ty) = &sig.output {
        return Err(syn::Error::new(
            ty.span(),
            "a webhook function is a declaration and returns nothing: drop the return type",
        ));
    }
    if !function.block.stmts.is_empty() {
        return Err(syn::Error::new(
            function.block.span(),
            "the body of a webhook function is never run: leave it empty, `{}`",
        ));
    }
    let mut inputs = sig.inputs.iter();
    match (inputs.next(), inputs.next()) {
        (Some(FnArg::Typed(arg)), None) => Ok(&arg.ty),
        (Some(FnArg::Receiver(receiver)), _) => Err(syn::Error::new(receiver.span(), SHAPE)),
        (None, _) => Err(syn::Error::new(sig.paren_token.span.join(), SHAPE)),
        (Some(_), Some(extra)) => Err(syn::Error::new(extra.span(), SHAPE)),
    }
}
