//! JSON that every receiver reads alike: an object may not name a member twice. Parsers
//! disagree on which of two values wins (serde_json and JavaScript keep the last, others the
//! first), so a payload validated on one value could be read with the other.

use std::collections::HashSet;
use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

/// The JSON pointer of the first member that `json` names twice in one object, if any;
/// `None` too when `json` does not parse (that is reported elsewhere).
pub(crate) fn first_repeated(json: &str) -> Option<String> {
    let mut found = None;
    let mut deserializer = serde_json::Deserializer::from_str(json);
    let walk = Walk {
        path: "",
        found: &mut found,
    };
    walk.deserialize(&mut deserializer).ok()?;
    found
}

/// Visits one value at `path`, noting in `found` the first repeated member below it.
struct Walk<'a> {
    path: &'a str,
    found: &'a mut Option<String>,
}

impl<'de> DeserializeSeed<'de> for Walk<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Walk<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut seen = HashSet::new();
        while let Some(name) = map.next_key::<String>()? {
            let path = format!("{}/{}", self.path, crate::problem::pointer_token(&name));
            if !seen.insert(name) && self.found.is_none() {
                *self.found = Some(path.clone());
            }
            map.next_value_seed(Walk {
                path: &path,
                found: &mut *self.found,
            })?;
        }
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut items: A) -> Result<(), A::Error> {
        let mut i = 0usize;
        loop {
            let path = format!("{}/{i}", self.path);
            let walk = Walk {
                path: &path,
                found: &mut *self.found,
            };
            if items.next_element_seed(walk)?.is_none() {
                return Ok(());
            }
            i += 1;
        }
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::first_repeated;

    #[test]
    fn a_member_named_twice_is_found_where_it_is() {
        assert_eq!(
            first_repeated(r#"{"monthly_fee":"free","username":"r","monthly_fee":9.5}"#),
            Some("/monthly_fee".into())
        );
        assert_eq!(
            first_repeated(r#"{"a":[{"x":1},{"y":1,"y":2}]}"#),
            Some("/a/1/y".into())
        );
        assert_eq!(first_repeated(r#"{"a/b":1,"a/b":2}"#), Some("/a~1b".into()));
        assert_eq!(first_repeated(r#"{"a":{"x":1},"b":{"x":1}}"#), None);
        assert_eq!(first_repeated(r#"[1,"x",null,true,{"k":-1.5e3}]"#), None);
    }
}
