//! How names in Rust become names in the OpenAPI document.
//!
//! These mirror FastAPI, so a webhook ported from Python keeps its documented summary.

/// The human summary of an operation named `name`: FastAPI's `name.replace("_", " ").title()`,
/// which also treats `-` as a word break so a webhook name like `new-subscription` reads the same
/// as the function `new_subscription`.
pub(crate) fn summary(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut start_of_word = true;
    for c in name.chars() {
        let c = if c == '_' || c == '-' { ' ' } else { c };
        if c.is_alphabetic() {
            if start_of_word {
                out.extend(c.to_uppercase());
            } else {
                out.extend(c.to_lowercase());
            }
            start_of_word = false;
        } else {
            out.push(c);
            // Python's str.title() starts a new word after any non-letter, digits included.
            start_of_word = true;
        }
    }
    out
}

/// A default `operationId` for a webhook called `name`: every character that is not a letter,
/// digit or `_` becomes `_`, so `new-subscription` gives `new_subscription`, the same as the
/// function a `#[webhook]` macro is written on.
pub(crate) fn operation_id(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summaries_follow_fastapi_title_case() {
        let cases = [
            ("new_subscription", "New Subscription"),
            ("new-subscription", "New Subscription"),
            ("read_users", "Read Users"),
            ("invoice.paid", "Invoice.Paid"),
            ("userCreated", "Usercreated"),
            ("v2_order_shipped", "V2 Order Shipped"),
            ("ALREADY_LOUD", "Already Loud"),
            ("", ""),
        ];
        for (name, expected) in cases {
            assert_eq!(summary(name), expected, "summary of {name:?}");
        }
    }

    #[test]
    fn operation_ids_are_identifiers() {
        let cases = [
            ("new-subscription", "new_subscription"),
            ("new_subscription", "new_subscription"),
            ("invoice.paid", "invoice_paid"),
            ("order/shipped v2", "order_shipped_v2"),
        ];
        for (name, expected) in cases {
            assert_eq!(operation_id(name), expected, "operation id of {name:?}");
        }
    }
}
