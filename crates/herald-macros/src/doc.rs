//! Turning doc comments into a description, as Python's `inspect.cleandoc` does for FastAPI.

use syn::{Attribute, Expr, ExprLit, Lit, Meta};

/// The doc comment's text with the common indentation removed and blank lines trimmed at both
/// ends; empty when there is none.
pub(crate) fn description(attrs: &[Attribute]) -> String {
    let lines: Vec<String> = attrs
        .iter()
        .filter_map(|attr| match &attr.meta {
            Meta::NameValue(nv) if nv.path.is_ident("doc") => match &nv.value {
                Expr::Lit(ExprLit {
                    lit: Lit::Str(s), ..
                }) => Some(s.value()),
                _ => None,
            },
            _ => None,
        })
        // `split`, not `lines`: an empty `///` line is a paragraph break and must survive.
        .flat_map(|chunk| chunk.split('\n').map(str::to_owned).collect::<Vec<_>>())
        .collect();
    clean(&lines)
}

fn clean(lines: &[String]) -> String {
    let indent = lines
        .iter()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.len() - l.trim_start().len())
        .min()
        .unwrap_or(0);
    let dedented: Vec<&str> = lines
        .iter()
        .map(|l| l.get(indent..).unwrap_or("").trim_end())
        .collect();
    let first = dedented.iter().position(|l| !l.is_empty());
    let last = dedented.iter().rposition(|l| !l.is_empty());
    match (first, last) {
        (Some(first), Some(last)) => dedented[first..=last].join("\n"),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::clean;

    #[test]
    fn cleans_like_cleandoc() {
        let cases: [(&[&str], &str); 5] = [
            (
                &[" When a user", " subscribes."],
                "When a user\nsubscribes.",
            ),
            (
                &["", " Title", "", "   indented", ""],
                "Title\n\n  indented",
            ),
            (&["no space"], "no space"),
            (&["  ", ""], ""),
            (&[], ""),
        ];
        for (input, expected) in cases {
            let input: Vec<String> = input.iter().map(|s| s.to_string()).collect();
            assert_eq!(clean(&input), expected, "{input:?}");
        }
    }
}
