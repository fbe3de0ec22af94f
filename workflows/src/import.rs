//! Files into the gather data: a screenplay (`.fountain`), notes or a treatment (`.txt`, `.md`),
//! or gather documents (`.json`), as a person has them. Text files become one document holding
//! the text (the reader finds screenplays, premises and scene ideas in it by content); JSON is a
//! gather export (`{"collections": {...}}`), a list of documents, or one document.

use serde_json::{Map, Value, json};

use crate::error::FilmError;

/// The file types taken, by extension.
pub const EXTENSIONS: &[&str] = &["fountain", "txt", "md", "json"];

/// One document to add: its collection, its id (if it brings one), its body.
#[derive(Debug, Clone, PartialEq)]
pub struct Imported {
    /// Collection.
    pub collection: String,
    /// Id, when the file gives one.
    pub id: Option<String>,
    /// The document.
    pub body: Value,
}

fn invalid(m: impl Into<String>) -> FilmError {
    FilmError::Invalid(m.into())
}

/// A collection name made from a file's name: `My Notes (v2).md` -> `my_notes_v2`.
fn collection_of(stem: &str) -> String {
    let mut s: String = stem
        .to_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    while s.contains("__") {
        s = s.replace("__", "_");
    }
    let s = s.trim_matches('_').to_string();
    let s = if s.starts_with(|c: char| c.is_ascii_lowercase()) {
        s
    } else {
        format!("imported_{s}")
    };
    s.chars()
        .take(64)
        .collect::<String>()
        .trim_end_matches('_')
        .to_string()
}

/// The documents a file holds. `filename` decides how it is read (its extension); the bytes
/// must be UTF-8 text. Errors say what is wrong with the file, and nothing is added.
pub fn documents_of(filename: &str, bytes: &[u8]) -> Result<Vec<Imported>, FilmError> {
    let name = filename
        .rsplit(['/', '\\'])
        .next()
        .unwrap_or(filename)
        .trim();
    let (stem, ext) = name
        .rsplit_once('.')
        .map(|(s, e)| (s, e.to_lowercase()))
        .unwrap_or((name, String::new()));
    if !EXTENSIONS.contains(&ext.as_str()) {
        return Err(invalid(format!(
            "`{}` is not a file Slate imports: send a .fountain or .txt screenplay, a .md or .txt treatment or notes, or a .json of gather documents",
            name.chars().take(80).collect::<String>()
        )));
    }
    if bytes.contains(&0) {
        return Err(invalid(format!(
            "`{name}` is not text (it holds binary data): export it as .fountain, .txt, .md or .json"
        )));
    }
    let text = std::str::from_utf8(bytes).map_err(|e| {
        invalid(format!(
            "`{name}` is not UTF-8 text (byte {} is not): save it as UTF-8",
            e.valid_up_to()
        ))
    })?;
    let text = text.trim_start_matches('\u{feff}');
    if text.trim().is_empty() {
        return Err(invalid(format!("`{name}` is empty")));
    }
    if ext != "json" {
        let collection =
            if ext == "fountain" || slate_activities::local::reader::looks_like_screenplay(text) {
                "screenplay".to_string()
            } else {
                collection_of(stem)
            };
        return Ok(vec![Imported {
            collection,
            id: None,
            body: json!({"file": name, "format": if ext == "fountain" { "fountain" } else { ext.as_str() }, "text": text}),
        }]);
    }
    let v: Value = serde_json::from_str(text)
        .map_err(|e| invalid(format!("`{name}` is not valid JSON: {e}")))?;
    let one = |collection: &str, d: &Value| -> Result<Imported, FilmError> {
        let Value::Object(m) = d else {
            return Err(invalid(format!(
                "`{name}`: a gather document is a JSON object, not {}",
                match d {
                    Value::Array(_) => "a list",
                    Value::String(_) => "a string",
                    _ => "a number or literal",
                }
            )));
        };
        let mut m: Map<String, Value> = m.clone();
        let id = match m.remove("id") {
            Some(Value::String(s)) => Some(s),
            Some(other) => Some(other.to_string()),
            None => None,
        };
        crate::slug::collection(collection)?;
        Ok(Imported {
            collection: collection.to_string(),
            id,
            body: Value::Object(m),
        })
    };
    let mut out = vec![];
    match &v {
        Value::Object(m) if m.get("collections").is_some_and(Value::is_object) => {
            for (c, docs) in m["collections"].as_object().into_iter().flatten() {
                let docs = docs.as_array().ok_or_else(|| {
                    invalid(format!(
                        "`{name}`: collections.{c} is not a list of documents"
                    ))
                })?;
                for d in docs {
                    out.push(one(c, d)?);
                }
            }
        }
        Value::Array(docs) => {
            let c = collection_of(stem);
            for d in docs {
                out.push(one(&c, d)?);
            }
        }
        Value::Object(_) => out.push(one(&collection_of(stem), &v)?),
        _ => {
            return Err(invalid(format!(
                "`{name}` holds no gather documents: send an object, a list of objects, or {{\"collections\": {{...}}}}"
            )));
        }
    }
    if out.is_empty() {
        return Err(invalid(format!("`{name}` holds no documents")));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_become_documents_and_bad_ones_say_why() {
        let sp = documents_of("Night Bus.fountain", b"INT. BUS - NIGHT\n\nAda waits.").unwrap();
        assert_eq!(sp[0].collection, "screenplay");
        assert_eq!(sp[0].body["text"], "INT. BUS - NIGHT\n\nAda waits.");
        let md = documents_of("My Treatment (v2).md", b"A story of two cousins.").unwrap();
        assert_eq!(md[0].collection, "my_treatment_v2");
        let ex = documents_of(
            "g.json",
            br#"{"collections": {"raw_characters": [{"id": "ada", "name": "Ada"}]}}"#,
        )
        .unwrap();
        assert_eq!(ex[0].collection, "raw_characters");
        assert_eq!(ex[0].id.as_deref(), Some("ada"));
        assert_eq!(ex[0].body, json!({"name": "Ada"}));
        assert_eq!(
            documents_of("2024 ideas.json", br#"[{"text": "a"}, {"text": "b"}]"#)
                .unwrap()
                .len(),
            2
        );
        for (file, bytes, says) in [
            ("a.png", &b"x"[..], "not a file Slate imports"),
            ("a.txt", &b"\x00\x01PNG"[..], "binary"),
            ("a.txt", &b"\xff\xfe"[..], "UTF-8"),
            ("a.json", &b"{nope"[..], "not valid JSON"),
            ("a.json", &b"[1, 2]"[..], "JSON object"),
            ("a.md", &b"  \n"[..], "empty"),
        ] {
            let e = documents_of(file, bytes).unwrap_err().to_string();
            assert!(e.contains(says), "{file}: {e}");
        }
    }
}
