//! Documents as leaves: every string of a document with the field names above it.

use serde_json::Value;

use super::lexicon::*;
use super::text::*;

// --- documents as leaves ------------------------------------------------------------------------

/// A string of a document with the (normalised) keys above it.
#[derive(Debug, Clone)]
pub(super) struct Leaf {
    pub(super) keys: Vec<String>,
    pub(super) text: String,
    /// Index of the innermost object it belongs to (see `Doc::objects`).
    pub(super) object: usize,
}

impl Leaf {
    pub(super) fn key(&self) -> &str {
        self.keys.last().map(String::as_str).unwrap_or("")
    }
    pub(super) fn key_is(&self, set: &[&str]) -> bool {
        key_in(self.key(), set)
    }
}

/// A flattened document.
#[derive(Debug, Clone, Default)]
pub(super) struct Doc {
    pub(super) leaves: Vec<Leaf>,
    /// Objects: (parent object, depth, whether an array element or inside one).
    pub(super) objects: Vec<(Option<usize>, usize, bool)>,
    /// Numbers under recognisable ordering keys.
    pub(super) order: Option<f64>,
}

pub(super) fn key_in(key: &str, set: &[&str]) -> bool {
    set.iter()
        .any(|k| key == *k || (k.len() >= 4 && key.starts_with(k)))
}

pub(super) fn flatten(v: &Value) -> Doc {
    let mut d = Doc::default();
    d.objects.push((None, 0, false));
    match v {
        Value::Object(m) => walk_fields(m, &mut vec![], 0, &mut d),
        other => walk(other, &mut vec![], 0, false, &mut d),
    }
    d
}

fn walk_fields(m: &serde_json::Map<String, Value>, keys: &mut Vec<String>, me: usize, d: &mut Doc) {
    for (k, x) in m {
        let nk = norm(k);
        if keys.is_empty() && SKIP_KEYS.contains(&nk.as_str()) {
            continue;
        }
        keys.push(nk);
        walk(x, keys, me, false, d);
        keys.pop();
    }
}

fn walk(v: &Value, keys: &mut Vec<String>, obj: usize, in_array: bool, d: &mut Doc) {
    match v {
        Value::String(s) => {
            let t = s.trim();
            if !t.is_empty() {
                d.leaves.push(Leaf {
                    keys: keys.clone(),
                    text: t.to_string(),
                    object: obj,
                });
            }
        }
        Value::Number(n)
            if keys.len() == 1 && key_in(&keys[0], ORDER_KEYS) && d.order.is_none() =>
        {
            d.order = n.as_f64();
        }
        Value::Array(a) => {
            for x in a {
                walk(x, keys, obj, true, d);
            }
        }
        Value::Object(m) => {
            let depth = d.objects[obj].1 + 1;
            d.objects
                .push((Some(obj), depth, in_array || d.objects[obj].2));
            let me = d.objects.len() - 1;
            walk_fields(m, keys, me, d);
        }
        _ => {}
    }
}

impl Doc {
    /// Leaves inside object `o` (itself or nested).
    pub(super) fn within(&self, o: usize) -> Vec<usize> {
        (0..self.leaves.len())
            .filter(|&i| {
                let mut cur = Some(self.leaves[i].object);
                while let Some(c) = cur {
                    if c == o {
                        return true;
                    }
                    cur = self.objects[c].0;
                }
                false
            })
            .collect()
    }
}
