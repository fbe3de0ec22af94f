//! Characters, places and props: from their documents, merged, looked up by name.

use super::doc::*;
use super::lexicon::*;
use super::text::*;
use super::*;

/// The name of an entity: a name-like field, else the first string that looks like a name,
/// else the words before the first comma of its first string.
pub(super) fn entity_name(d: &Doc, name_keys: &[&str]) -> Option<String> {
    if let Some(l) = d
        .leaves
        .iter()
        .filter(|l| l.key_is(name_keys) && !is_prose(&l.text))
        .min_by_key(|l| l.keys.len())
    {
        return Some(l.text.clone());
    }
    if let Some(l) = d.leaves.iter().find(|l| looks_like_name(&l.text)) {
        return Some(l.text.clone());
    }
    let first = &d.leaves.first()?.text;
    let head = first
        .split([',', ':', ';', '—', '(', '.'])
        .next()
        .unwrap_or(first)
        .trim();
    // "Maren, the keeper's daughter" -> Maren; "a tall keeper who..." has no name.
    let head = head.split(" is ").next().unwrap_or(head).trim();
    (words(head).len() <= 4 && !head.is_empty()).then(|| title_case(head, false))
}

/// Later non-empty values win; a different earlier value is a contradiction, noted.
pub(super) fn set_field(
    field: &mut String,
    v: &str,
    who: &str,
    what: &str,
    notes: &mut Vec<String>,
) {
    let v = v.trim();
    if v.is_empty() {
        return;
    }
    if field.is_empty() {
        *field = v.to_string();
    } else if norm(field) != norm(v) && !norm(field).contains(&norm(v)) {
        if norm(v).contains(&norm(field)) {
            *field = v.to_string();
        } else {
            notes.push(format!(
                "{who}'s {what} was given as \"{}\" and later as \"{v}\"; the later is used",
                clip(field, 80)
            ));
            *field = v.to_string();
        }
    }
}

pub(super) fn append(field: &mut String, v: &str) {
    let v = v.trim();
    if v.is_empty() || norm(field).contains(&norm(v)) {
        return;
    }
    if !field.is_empty() {
        field.push_str("; ");
    }
    field.push_str(v);
}

pub(super) fn character_from(d: &Doc) -> CharacterSketch {
    let name = entity_name(d, NAME_KEYS).unwrap_or_else(|| "Unnamed".into());
    let mut c = CharacterSketch {
        id: id_for(&name),
        name: name.clone(),
        ..Default::default()
    };
    let mut sink = vec![];
    for l in &d.leaves {
        let t = l.text.as_str();
        let in_relations = l.keys.len() > 1
            && l.keys[..l.keys.len() - 1].iter().any(|k| {
                key_in(
                    k,
                    &[
                        "relationships",
                        "relations",
                        "relationship",
                        "family",
                        "friends",
                        "bonds",
                        "ties",
                    ],
                )
            });
        if t == name || in_relations || (l.key_is(&["name"]) && !is_prose(t)) {
            continue;
        }
        let hex = hex_codes(t);
        if l.key_is(COLOR_KEYS) || (!hex.is_empty() && words(t).len() <= 2) {
            if let Some(h) = hex
                .first()
                .cloned()
                .or_else(|| colors_in(t).first().cloned())
            {
                c.color = Some(h);
            }
            continue;
        }
        if l.key_is(ROLE_KEYS) {
            set_field(&mut c.role, t, &name, "role", &mut sink);
        } else if l.key_is(PERSONALITY_KEYS) {
            append(&mut c.personality, t);
        } else if l.key_is(COSTUME_KEYS) {
            append(&mut c.costume, t);
        } else if l.key_is(VOICE_KEYS) {
            append(&mut c.voice, t);
        } else if l.key_is(BACKGROUND_KEYS) {
            append(&mut c.background, t);
        } else if l.key_is(APPEARANCE_KEYS) {
            append(&mut c.appearance, t);
        } else {
            // Unrecognised field, or a note that starts with the name ("Maren, twelve, fierce,
            // in a yellow raincoat"): each comma-separated part is judged by its words.
            let rest = strip_name(t, &name);
            for sentence in sentences(rest) {
                let parts: Vec<&str> = if words(&sentence).len() > 20 {
                    vec![sentence.as_str()]
                } else {
                    sentence
                        .split([',', ';'])
                        .map(|p| p.trim().trim_end_matches('.'))
                        .filter(|p| !p.is_empty())
                        .collect()
                };
                for part in parts {
                    classify_trait(&mut c, part, &name, &mut sink);
                }
            }
        }
    }
    // A colour not given is read from what they wear once every document is merged
    // (`dress`), so a coat named in a premise counts too.
    c
}

/// "Maren, twelve" -> "twelve"; "Maren is brave" -> "brave".
pub(super) fn strip_name<'a>(t: &'a str, name: &str) -> &'a str {
    let lower = t.to_lowercase();
    let n = name.to_lowercase();
    if let Some(rest) = lower.strip_prefix(&n) {
        let cut = t.len() - rest.len();
        let rest_t = &t[cut..];
        for sep in [",", ":", " -", " —", " is ", " ("] {
            if let Some(r) = rest_t.strip_prefix(sep) {
                return r.trim();
            }
        }
    }
    t
}

pub(super) fn classify_trait(c: &mut CharacterSketch, t: &str, name: &str, sink: &mut Vec<String>) {
    let n = words(t).len();
    if n <= 6 && canonical_role(t).is_some() {
        set_field(&mut c.role, t, name, "role", sink);
    } else if has_any(t, VOICE_WORDS) {
        append(&mut c.voice, t);
    } else if has_any(t, COSTUME_WORDS) {
        append(&mut c.costume, t);
    } else if has_any(t, APPEARANCE_WORDS) || has_any(t, AGE_WORDS) {
        append(&mut c.appearance, t);
    } else if n <= 8 && !t.trim_end().ends_with('.') {
        append(&mut c.personality, t);
    } else {
        append(&mut c.background, t);
    }
}

/// A stable id from a name: lower-case ASCII words joined by `-` (a short hash when the name
/// has no ASCII letters).
pub fn id_for(name: &str) -> String {
    let s = crate::local::planner::slugify(name);
    if s.len() >= 2 {
        s
    } else {
        format!(
            "c-{:08x}",
            crate::local::render::stable_hash(&name.to_lowercase()) as u32
        )
    }
}

/// The character a new sketch is: the same name compared case- and space-insensitively, or a
/// one-word name that is a word of exactly one fuller name ("Tom" and "Old Tom"; the fuller
/// name is kept, and the merge is noted).
pub(super) fn same_character(r: &Reading, name: &str) -> Option<usize> {
    let key = norm(name);
    if let Some(i) = r.characters.iter().position(|x| norm(&x.name) == key) {
        return Some(i);
    }
    let ws = words(name);
    let part_of = |short: &[String], long: &str| {
        short.len() == 1 && words(long).len() > 1 && words(long).contains(&short[0])
    };
    let hits: Vec<usize> = (0..r.characters.len())
        .filter(|&i| {
            let other = &r.characters[i].name;
            part_of(&ws, other) || part_of(&words(other), name)
        })
        .collect();
    (hits.len() == 1).then(|| hits[0])
}

pub(super) fn merge_character(r: &mut Reading, mut c: CharacterSketch) {
    let Some(i) = same_character(r, &c.name) else {
        r.characters.push(c);
        return;
    };
    if norm(&r.characters[i].name) != norm(&c.name) {
        let (short, long) = if c.name.len() > r.characters[i].name.len() {
            (r.characters[i].name.clone(), c.name.clone())
        } else {
            (c.name.clone(), r.characters[i].name.clone())
        };
        r.contradictions.push(format!(
            "\"{short}\" is taken to be {long}, the only character whose name has that word"
        ));
        if c.name.len() > r.characters[i].name.len() {
            r.characters[i].name = c.name.clone();
            r.characters[i].id = c.id.clone();
        }
        c.name = r.characters[i].name.clone();
    }
    let have = &mut r.characters[i];
    let who = have.name.clone();
    let n = &mut r.contradictions;
    set_field(&mut have.role, &c.role, &who, "role", n);
    set_field(
        &mut have.personality,
        &c.personality,
        &who,
        "personality",
        n,
    );
    set_field(&mut have.appearance, &c.appearance, &who, "appearance", n);
    set_field(&mut have.background, &c.background, &who, "background", n);
    set_field(&mut have.costume, &c.costume, &who, "costume", n);
    set_field(&mut have.voice, &c.voice, &who, "voice", n);
    if let Some(col) = c.color {
        if have.color.as_ref().is_some_and(|h| *h != col) {
            n.push(format!(
                "{who}'s colour was given as {} and later as {col}; the later is used",
                have.color.clone().unwrap_or_default()
            ));
        }
        have.color = Some(col);
    }
    have.from_scenes &= c.from_scenes;
}

pub(super) fn relationships(r: &mut Reading, docs: &[Doc]) {
    for d in docs {
        let Some(me) = entity_name(d, NAME_KEYS).and_then(|n| find_character(r, &n)) else {
            continue;
        };
        for l in &d.leaves {
            // {"relationships": {"Tam": "best friend"}}: the key names the other.
            if l.keys.len() < 2 {
                continue;
            }
            let other_key = &l.keys[l.keys.len() - 1];
            let other = r
                .characters
                .iter()
                .position(|c| norm(&c.name) == *other_key || c.id.replace('-', "") == *other_key);
            if let Some(o) = other
                && o != me
            {
                let other_name = r.characters[o].name.clone();
                let c = &mut r.characters[me];
                c.relationships.retain(|(n, _)| *n != other_name);
                c.relationships.push((other_name, l.text.clone()));
            }
        }
    }
}

/// The index of the character a name refers to: the full name, or a first name that only one
/// character has.
pub(super) fn find_character(r: &Reading, name: &str) -> Option<usize> {
    let n = norm(name);
    if n.is_empty() {
        return None;
    }
    if let Some(i) = r
        .characters
        .iter()
        .position(|c| norm(&c.name) == n || c.id == name.trim().to_lowercase())
    {
        return Some(i);
    }
    let firsts: Vec<usize> = r
        .characters
        .iter()
        .enumerate()
        .filter(|(_, c)| c.name.split_whitespace().next().map(norm) == Some(n.clone()))
        .map(|(i, _)| i)
        .collect();
    (firsts.len() == 1).then(|| firsts[0])
}

pub(super) fn place_from(d: &Doc) -> PlaceSketch {
    let name = entity_name(d, PLACE_NAME_KEYS).unwrap_or_else(|| "Unnamed place".into());
    let mut p = PlaceSketch {
        name: title_case(&name, false),
        ..Default::default()
    };
    for l in &d.leaves {
        let t = l.text.as_str();
        if t == name {
            continue;
        }
        let colours = colors_in(t);
        if l.key_is(COLOR_KEYS) || (!hex_codes(t).is_empty() && words(t).len() <= 3) {
            for c in colours {
                if !p.palette.contains(&c) {
                    p.palette.push(c);
                }
            }
        } else if l.key_is(RULE_KEYS) || (!l.key_is(DESC_KEYS) && has_any(t, RULE_WORDS)) {
            append(&mut p.rules, t);
        } else {
            append(&mut p.description, t);
        }
    }
    if d.leaves.len() == 1 && p.description.is_empty() {
        p.description = d.leaves[0].text.clone();
    }
    p
}

pub(super) fn merge_place(r: &mut Reading, p: PlaceSketch, made: bool) -> String {
    let key = norm_name(&p.name);
    if let Some(have) = r.places.iter_mut().find(|x| norm_name(&x.name) == key) {
        let who = have.name.clone();
        let n = &mut r.contradictions;
        if !made {
            set_field(
                &mut have.description,
                &p.description,
                &who,
                "description",
                n,
            );
            have.made = false;
        }
        append(&mut have.rules, &p.rules);
        for c in p.palette {
            if !have.palette.contains(&c) {
                have.palette.push(c);
            }
        }
        return have.name.clone();
    }
    let name = p.name.clone();
    r.places.push(PlaceSketch { made, ..p });
    name
}

pub(super) fn prop_from(d: &Doc) -> PropSketch {
    let name = entity_name(d, PLACE_NAME_KEYS).unwrap_or_else(|| "Unnamed prop".into());
    let mut p = PropSketch {
        name: title_case(&name, true),
        ..Default::default()
    };
    for l in &d.leaves {
        let t = l.text.as_str();
        if t == name {
            continue;
        }
        if l.key_is(COLOR_KEYS) || (!hex_codes(t).is_empty() && words(t).len() <= 2) {
            p.color = colors_in(t).first().cloned();
        } else {
            append(&mut p.description, t);
        }
    }
    if p.color.is_none() {
        p.color = colors_in(&p.description).first().cloned();
    }
    p
}

pub(super) fn merge_prop(r: &mut Reading, p: PropSketch) {
    let key = norm_name(&p.name);
    if let Some(have) = r.props.iter_mut().find(|x| norm_name(&x.name) == key) {
        let who = have.name.clone();
        set_field(
            &mut have.description,
            &p.description,
            &who,
            "description",
            &mut r.contradictions,
        );
        if p.color.is_some() {
            have.color = p.color;
        }
        return;
    }
    r.props.push(p);
}

pub(super) fn find_place(r: &Reading, text: &str) -> Option<String> {
    let n = norm_name(text);
    if n.is_empty() {
        return None;
    }
    r.places
        .iter()
        .find(|p| norm_name(&p.name) == n)
        .or_else(|| {
            // "the old Harbor Market" names the Harbor Market.
            r.places
                .iter()
                .filter(|p| mentions(text, &p.name))
                .max_by_key(|p| p.name.len())
        })
        .map(|p| p.name.clone())
}

pub(super) fn find_prop(r: &Reading, text: &str) -> Option<String> {
    let n = norm_name(text);
    r.props
        .iter()
        .find(|p| norm_name(&p.name) == n)
        .map(|p| p.name.clone())
}
