//! Project slugs and the names derived from them.
//!
//! A slug becomes part of namespace names (`gather_<slug>`), blob keys and, with the MongoDB
//! feature, database names. It is validated once, here, and only a [`Slug`] is ever turned into
//! a name: nothing unvalidated is spliced into SQL, a path or a database name.

use serde::{Deserialize, Serialize};

use crate::error::FilmError;

/// Longest slug: `qualified_` + 48 stays under MongoDB's 64-byte database-name limit.
pub const MAX_SLUG: usize = 48;

/// A validated project slug: 1-48 of `a-z`, `0-9` and `-`, starting and ending with a letter or
/// digit.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, utoipa::ToSchema)]
#[serde(transparent)]
#[schema(value_type = String, pattern = "^[a-z0-9]([a-z0-9-]{0,46}[a-z0-9])?$", example = "lantern-keeper")]
pub struct Slug(String);

impl Slug {
    /// Validate.
    pub fn parse(s: &str) -> Result<Slug, FilmError> {
        let ok = !s.is_empty()
            && s.len() <= MAX_SLUG
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !s.starts_with('-')
            && !s.ends_with('-');
        if ok {
            Ok(Slug(s.to_string()))
        } else {
            Err(FilmError::Invalid(format!(
                "`{}` is not a valid project slug: use 1 to {MAX_SLUG} lower-case letters, digits and hyphens, starting and ending with a letter or digit (for example `aladdin-2024`)",
                s.chars().take(60).collect::<String>()
            )))
        }
    }

    /// The slug.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `gather_<slug>`.
    pub fn gather(&self) -> String {
        format!("gather_{}", self.0)
    }

    /// `qualified_<slug>`.
    pub fn qualified(&self) -> String {
        format!("qualified_{}", self.0)
    }
}

impl<'de> Deserialize<'de> for Slug {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Slug::parse(&s).map_err(serde::de::Error::custom)
    }
}

impl std::fmt::Display for Slug {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Validate a collection name: 1-64 of `a-z`, `0-9`, `_`, starting with a letter.
pub fn collection(name: &str) -> Result<&str, FilmError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.as_bytes()[0].is_ascii_lowercase()
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if ok {
        Ok(name)
    } else {
        Err(FilmError::Invalid(format!(
            "`{}` is not a valid collection name: use lower-case letters, digits and underscores, starting with a letter (for example `raw_characters`)",
            name.chars().take(70).collect::<String>()
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn good_slugs() {
        for s in ["a", "aladdin-2024", "x1", "the-lantern-thief"] {
            assert_eq!(Slug::parse(s).unwrap().as_str(), s);
        }
        assert_eq!(
            Slug::parse("aladdin-2024").unwrap().gather(),
            "gather_aladdin-2024"
        );
    }

    #[test]
    fn hostile_slugs_are_refused() {
        let long = "a".repeat(200);
        for s in [
            "",
            "../x",
            "a;drop",
            "A",
            "a b",
            "-a",
            "a-",
            "é",
            "日本",
            "a/b",
            "a.b",
            "a_b",
            "x\0y",
            long.as_str(),
        ] {
            let e = Slug::parse(s).unwrap_err();
            assert!(e.to_string().contains("not a valid project slug"), "{s}");
        }
        assert!(serde_json::from_str::<Slug>("\"../x\"").is_err());
    }

    #[test]
    fn collections() {
        assert!(collection("raw_characters").is_ok());
        for c in ["", "Raw", "1x", "a-b", "a;b", "a b"] {
            assert!(collection(c).is_err(), "{c}");
        }
    }
}
