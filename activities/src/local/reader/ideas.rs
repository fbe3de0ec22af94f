//! Scene ideas: where, when, who, and their units of action and dialogue.
//!
//! (Over 600 lines on purpose: a scene idea's reading (where, when, who, units, props) is one pass
//! over the same parts; `build_idea` is due to be divided (issue 24's list).)

use std::collections::BTreeSet;

use super::doc::*;
use super::entities::*;
use super::lexicon::*;
use super::text::*;
use super::*;

/// "in the old kitchen" -> "Old Kitchen": a place phrase after a preposition.
fn place_phrase(text: &str) -> Option<String> {
    let toks: Vec<&str> = text.split_whitespace().collect();
    for (i, t) in toks.iter().enumerate() {
        let p = t.to_lowercase();
        if ![
            "in", "at", "inside", "outside", "on", "by", "near", "across", "through", "into",
            "onto", "from", "under", "along", "to", "over", "above", "beside", "behind", "toward",
            "towards", "past", "around", "within", "beneath", "below",
        ]
        .contains(&p.as_str())
        {
            continue;
        }
        let mut j = i + 1;
        let mut phrase = vec![];
        while j < toks.len() && phrase.len() < 4 {
            let raw = toks[j];
            let w = raw
                .trim_matches(|c: char| !c.is_alphanumeric() && c != '\'')
                .to_lowercase();
            if w.is_empty() {
                break;
            }
            phrase.push(w.clone());
            let end = raw.ends_with([',', '.', ';', '!', '?', ':']);
            if PLACE_NOUNS.contains(&w.as_str()) {
                // Take the noun's compound ("lighthouse stair") if the next word is one too.
                if !end && let Some(next) = toks.get(j + 1) {
                    let nw = next
                        .trim_matches(|c: char| !c.is_alphanumeric())
                        .to_lowercase();
                    if PLACE_NOUNS.contains(&nw.as_str()) {
                        phrase.push(nw);
                    }
                }
                let phrase: Vec<&str> = phrase
                    .iter()
                    .map(String::as_str)
                    .filter(|w| {
                        !["the", "a", "an", "her", "his", "their", "its", "my", "our"].contains(w)
                    })
                    .collect();
                return Some(title_case(&phrase.join(" "), true));
            }
            if end {
                break;
            }
            j += 1;
        }
    }
    // No preposition before it: the first place noun with the words that qualify it ("crossing
    // the red dunes" -> Red Dunes, "reach the oasis market" -> Oasis Market).
    for (i, t) in toks.iter().enumerate() {
        let w = t
            .trim_matches(|c: char| !c.is_alphanumeric() && c != '\'')
            .to_lowercase();
        if !PLACE_NOUNS.contains(&w.as_str()) {
            continue;
        }
        let mut phrase = vec![w];
        for prev in toks[..i].iter().rev().take(2) {
            let p = prev
                .trim_matches(|c: char| !c.is_alphanumeric() && c != '\'')
                .to_lowercase();
            if prev.ends_with([',', '.', ';', ':'])
                || p.is_empty()
                || STOP.contains(&p.as_str())
                || p.ends_with("ing")
                || (p.len() > 4 && p.ends_with("ed"))
            {
                break;
            }
            phrase.insert(0, p);
        }
        return Some(title_case(&phrase.join(" "), true));
    }
    None
}

#[derive(Default)]
struct IdeaParts {
    title: Option<String>,
    place: Option<String>,
    time: Option<&'static str>,
    weather: Option<&'static str>,
    characters: Vec<String>,
    props: Vec<String>,
    prose: Vec<String>,
    /// (speaker name, line)
    lines: Vec<(String, String)>,
}

pub(super) fn idea_from(r: &mut Reading, d: &Doc, prev: Option<&Idea>) -> Idea {
    let mut parts = IdeaParts::default();
    let mut used = vec![false; d.leaves.len()];
    spoken_pairs(r, d, &mut used, &mut parts);
    for (i, l) in d.leaves.iter().enumerate() {
        if !used[i] {
            read_leaf(r, l, &mut parts);
        }
    }
    // A lone string is the idea itself, even when short ("Maren climbs the tower").
    if parts.prose.is_empty()
        && parts.lines.is_empty()
        && let Some(t) = parts.title.take()
    {
        parts.prose.push(t);
    }
    build_idea(r, parts, prev)
}

/// {who, line} pairs: an object in a list (or with speaker/line keys) holding a character's
/// name and the words they say. Marks the leaves it takes as `used`.
fn spoken_pairs(r: &mut Reading, d: &Doc, used: &mut [bool], parts: &mut IdeaParts) {
    for o in 1..d.objects.len() {
        let inside: Vec<usize> = d.within(o).into_iter().filter(|&i| !used[i]).collect();
        if inside.len() != 2 {
            continue;
        }
        let hinted = d.objects[o].2
            || inside
                .iter()
                .any(|&i| d.leaves[i].key_is(SPEAKER_KEYS) || d.leaves[i].key_is(LINE_KEYS));
        if !hinted {
            continue;
        }
        let (a, b) = (&d.leaves[inside[0]], &d.leaves[inside[1]]);
        let pick = |who: &Leaf, what: &Leaf| {
            let known = find_character(r, &who.text).is_some();
            let named = looks_like_name(&who.text) && who.key_is(SPEAKER_KEYS);
            ((known || named)
                && !is_name_of_anything(r, &what.text)
                && !words(&what.text).is_empty())
            .then(|| (who.text.clone(), what.text.clone()))
        };
        if let Some(line) = pick(a, b).or_else(|| pick(b, a)) {
            parts.lines.push(line);
            used[inside[0]] = true;
            used[inside[1]] = true;
        }
    }
}

/// One leaf of an idea: its time, weather or place by its key, else a character, prop, place,
/// time or title named in a short phrase, else text of the idea.
fn read_leaf(r: &mut Reading, l: &Leaf, parts: &mut IdeaParts) {
    let t = l.text.as_str();
    let prose = is_prose(t);
    if l.key_is(IDEA_TIME_KEYS) && !prose {
        parts.time = parts.time.or(time_in(t)).or(Some("afternoon"));
        parts.weather = parts.weather.or(weather_in(t));
        return;
    }
    if l.key_is(IDEA_WEATHER_KEYS) && !prose {
        parts.weather = parts.weather.or(weather_in(t)).or(Some("clear"));
        return;
    }
    if l.key_is(IDEA_LOCATION_KEYS) && words(t).len() <= 8 {
        parts
            .place
            .get_or_insert(t.trim_end_matches('.').to_string());
        if let Some(tm) = time_in(t) {
            parts.time.get_or_insert(tm);
        }
        return;
    }
    if !prose {
        read_short_leaf(r, l, parts);
        return;
    }
    parts.prose.push(t.to_string());
}

/// A leaf that is no prose: a name, a prop, a place, a time, a weather or a title.
fn read_short_leaf(r: &mut Reading, l: &Leaf, parts: &mut IdeaParts) {
    let t = l.text.as_str();
    if let Some(ci) = find_character(r, t) {
        let id = r.characters[ci].id.clone();
        if !parts.characters.contains(&id) {
            parts.characters.push(id);
        }
        return;
    }
    if let Some(p) = find_prop(r, t) {
        if !parts.props.contains(&p) {
            parts.props.push(p);
        }
        return;
    }
    if l.key_is(IDEA_CHARACTER_KEYS) && looks_like_name(t) {
        // A character the scene names and no document describes.
        merge_character(
            r,
            CharacterSketch {
                id: id_for(t),
                name: t.to_string(),
                from_scenes: true,
                ..Default::default()
            },
        );
        let id = id_for(t);
        if !parts.characters.contains(&id) {
            parts.characters.push(id);
        }
        return;
    }
    if l.key_is(IDEA_PROP_KEYS) {
        let name = title_case(t, true);
        merge_prop(
            r,
            PropSketch {
                name: name.clone(),
                description: format!("{name}, as the scene ideas mention it"),
                color: colors_in(t).first().cloned(),
            },
        );
        if !parts.props.contains(&name) {
            parts.props.push(name);
        }
        return;
    }
    if find_place(r, t).is_some() && parts.place.is_none() {
        parts.place = Some(t.to_string());
        return;
    }
    if words(t).len() <= 3 {
        if let Some(tm) = time_in(t) {
            parts.time.get_or_insert(tm);
            return;
        }
        if let Some(w) = weather_in(t) {
            parts.weather.get_or_insert(w);
            return;
        }
    }
    if l.key_is(IDEA_TITLE_KEYS) || parts.title.is_none() && !has_any(t, PLACE_NOUNS) {
        if parts.title.is_none() {
            parts.title = Some(t.to_string());
            return;
        }
    } else if has_any(t, PLACE_NOUNS) && parts.place.is_none() {
        parts.place = Some(t.to_string());
        return;
    }
    // A short phrase that is none of these is still text of the idea.
    parts.prose.push(t.to_string());
}

fn is_name_of_anything(r: &Reading, t: &str) -> bool {
    find_character(r, t).is_some() && !is_prose(t)
}

fn content_words(s: &str) -> BTreeSet<String> {
    words(s)
        .into_iter()
        .filter(|w| w.len() >= 3 && !STOP.contains(&w.as_str()))
        .map(|w| w.trim_end_matches("'s").to_string())
        .collect()
}

/// Drop sentences that only repeat the others (a summary beside its beats). Order-independent:
/// the most-repeated sentence goes first, ties broken by length then text, until none is.
fn drop_repeats(units: Vec<String>) -> Vec<String> {
    let sets: Vec<BTreeSet<String>> = units.iter().map(|u| content_words(u)).collect();
    let mut keep = vec![true; units.len()];
    loop {
        let mut worst: Option<(f64, usize)> = None;
        for i in 0..units.len() {
            if !keep[i] || sets[i].len() < 3 {
                continue;
            }
            let others: BTreeSet<&String> = (0..units.len())
                .filter(|&j| j != i && keep[j])
                .flat_map(|j| sets[j].iter())
                .collect();
            let covered =
                sets[i].iter().filter(|w| others.contains(w)).count() as f64 / sets[i].len() as f64;
            if covered >= 0.6 {
                let better = match worst {
                    None => true,
                    Some((c, j)) => {
                        covered > c
                            || (covered == c
                                && (units[i].len(), &units[i]) > (units[j].len(), &units[j]))
                    }
                };
                if better {
                    worst = Some((covered, i));
                }
            }
        }
        match worst {
            Some((_, i)) => keep[i] = false,
            None => break,
        }
    }
    units
        .into_iter()
        .zip(keep)
        .filter(|(_, k)| *k)
        .map(|(u, _)| u)
        .collect()
}

/// A sentence of an idea: its action, its quoted lines (speaker as written, words), and whether
/// the lines come before the action.
type Piece = (String, Vec<(Option<String>, String)>, bool);

/// Words that only move the story along in time ("Later.", "Meanwhile.", "The next day.").
const CONNECTORS: &[&str] = &[
    "later",
    "meanwhile",
    "then",
    "next",
    "afterwards",
    "afterward",
    "moments",
    "much",
    "soon",
    "after",
    "that",
    "the",
    "a",
    "day",
    "days",
    "hours",
    "hour",
    "minutes",
    "weeks",
    "same",
    "time",
    "following",
    "suddenly",
    "now",
    "still",
    "again",
];

/// A piece of text too short to be a scene that only says when, in what weather, or that time
/// passes ("Dusk.", "Rain.", "Later."): it sets the time or weather of what follows.
fn fragment(text: &str) -> Option<(Option<&'static str>, Option<&'static str>)> {
    let ws = words(text);
    if ws.is_empty() || ws.len() > 3 {
        return None;
    }
    let time = time_in(text);
    let weather = weather_in(text);
    let passing = ws.iter().all(|w| CONNECTORS.contains(&w.as_str()));
    let only_when = ws.iter().all(|w| {
        CONNECTORS.contains(&w.as_str())
            || time_in(w).is_some()
            || weather_in(w).is_some()
            || [
                "at", "in", "by", "of", "early", "late", "deep", "heavy", "light",
            ]
            .contains(&w.as_str())
    });
    (passing || (only_when && (time.is_some() || weather.is_some()))).then_some((time, weather))
}

fn build_idea(r: &mut Reading, mut parts: IdeaParts, prev: Option<&Idea>) -> Idea {
    drop_fragments(&mut parts);
    let all_text = parts.prose.join(" ");
    let pieces = pieces_of(&parts.prose);
    let kept: BTreeSet<String> = drop_repeats(
        pieces
            .iter()
            .filter(|(a, _, _)| !a.is_empty())
            .map(|(a, _, _)| a.clone())
            .collect(),
    )
    .into_iter()
    .collect();

    let mut present: Vec<String> = parts.characters.clone();
    let units = units_of(r, &parts, &pieces, &kept, &mut present);
    // Who is there: named in the idea, speaking, or mentioned in its text.
    for c in &r.characters {
        if (mentions(&all_text, &c.name)
            || c.name.split_whitespace().next().is_some_and(|first| {
                c.name.contains(' ')
                    && mentions(&all_text, first)
                    && find_character(r, first).is_some()
            }))
            && !present.contains(&c.id)
        {
            present.push(c.id.clone());
        }
    }
    let mut props = parts.props.clone();
    for p in &r.props {
        if mentions_object(&all_text, &p.name) && !props.contains(&p.name) {
            props.push(p.name.clone());
        }
    }

    let (place, place_given) = place_of(r, &parts, &all_text, prev);
    let time = parts
        .time
        .or_else(|| time_in(&all_text))
        .map(str::to_string)
        .or_else(|| prev.map(|p| p.time_of_day.clone()))
        .unwrap_or_else(|| "afternoon".into());
    let weather = parts
        .weather
        .or_else(|| weather_in(&all_text))
        .map(str::to_string)
        .or_else(|| prev.filter(|p| p.place == place).map(|p| p.weather.clone()))
        .unwrap_or_else(|| "clear".into());
    let summary = parts
        .prose
        .iter()
        .max_by_key(|p| (words(p).len(), std::cmp::Reverse((*p).clone())))
        .map(|p| sentences(p).into_iter().next().unwrap_or_default())
        .or_else(|| parts.lines.first().map(|(w, l)| format!("{w}: \"{l}\"")))
        .unwrap_or_default();
    Idea {
        title: parts.title,
        summary,
        place,
        place_given,
        time_given: parts.time.is_some() || time_in(&all_text).is_some(),
        time_of_day: time,
        weather,
        units,
        characters: present,
        props,
        interior: None,
        transition_in: None,
        transition_out: None,
    }
}

/// Fragments ("Dusk.") set the time or weather of what follows; they are not scenes.
fn drop_fragments(parts: &mut IdeaParts) {
    let mut prose = vec![];
    for p in std::mem::take(&mut parts.prose) {
        let kept: Vec<String> = sentences(&p)
            .into_iter()
            .filter(|s| match fragment(s) {
                Some((t, w)) => {
                    if let Some(t) = t {
                        parts.time.get_or_insert(t);
                    }
                    if let Some(w) = w {
                        parts.weather.get_or_insert(w);
                    }
                    false
                }
                None => true,
            })
            .collect();
        if !kept.is_empty() {
            prose.push(kept.join(" "));
        }
    }
    parts.prose = prose;
}

/// Sentences, with their quotations taken out as lines: (action, its lines, whether the lines
/// come first).
fn pieces_of(prose: &[String]) -> Vec<Piece> {
    let mut pieces: Vec<Piece> = vec![];
    for p in prose {
        for s in sentences(p) {
            let (qs, rest) = quotes(&s);
            if qs.is_empty() {
                pieces.push((s, vec![], false));
                continue;
            }
            // What is left once the quotations and their speech tags ("asks Maren") are out is
            // action only if it says something of its own.
            let tag_words: BTreeSet<String> = qs
                .iter()
                .filter_map(|q| q.speaker.as_deref())
                .flat_map(words)
                .chain(SPEECH_VERBS.iter().map(|v| v.to_string()))
                .collect();
            let own: Vec<&str> = rest
                .split_whitespace()
                .filter(|t| {
                    let w = t
                        .trim_matches(|c: char| !c.is_alphanumeric() && c != '\'')
                        .to_lowercase();
                    !tag_words.contains(&w)
                })
                .collect();
            let own = own.join(" ");
            let action = if content_words(&own).len() >= 3 {
                own
            } else {
                String::new()
            };
            let lines_first = s.trim_start().starts_with(['"', '\u{201c}']);
            pieces.push((
                action,
                qs.into_iter().map(|q| (q.speaker, q.line)).collect(),
                lines_first,
            ));
        }
    }
    pieces
}

/// The idea's shots in order: each sentence's action (when `kept`) and its lines, the separate
/// {who, line} pairs after the first action. Speakers join those `present`.
fn units_of(
    r: &mut Reading,
    parts: &IdeaParts,
    pieces: &[Piece],
    kept: &BTreeSet<String>,
    present: &mut Vec<String>,
) -> Vec<Unit> {
    let mut units: Vec<Unit> = vec![];
    let mut first_action_done = false;
    let mut pending_lines = parts.lines.clone();
    for (action, lines, lines_first) in pieces {
        let mut say = |r: &mut Reading, units: &mut Vec<Unit>| {
            for (who, line) in lines {
                let spoken = who
                    .as_deref()
                    .is_some_and(|w| add_line(r, units, present, w, line));
                if !spoken {
                    units.push(Unit::Action(clip(&format!("\"{line}\""), 120)));
                }
            }
        };
        if *lines_first {
            say(r, &mut units);
        }
        if !action.is_empty() && kept.contains(action) {
            for part in split_long(action) {
                units.push(Unit::Action(part));
            }
        }
        if !lines_first {
            say(r, &mut units);
        }
        if !action.is_empty() && kept.contains(action) && !first_action_done {
            first_action_done = true;
            // Separate {who, line} pairs follow the first action.
            for (who, line) in pending_lines.drain(..) {
                if !add_line(r, &mut units, present, &who, &line) {
                    units.push(Unit::Action(format!("\"{line}\"")));
                }
            }
        }
    }
    for (who, line) in pending_lines {
        if !add_line(r, &mut units, present, &who, &line) {
            units.push(Unit::Action(format!("\"{line}\"")));
        }
    }

    units
}

/// A line spoken by `who`, as one close-up per two sentences; false when `who` is no character
/// and cannot be one.
fn add_line(
    r: &mut Reading,
    units: &mut Vec<Unit>,
    present: &mut Vec<String>,
    who: &str,
    line: &str,
) -> bool {
    let id = match find_character(r, who) {
        Some(i) => r.characters[i].id.clone(),
        None if looks_like_name(who) => {
            merge_character(
                r,
                CharacterSketch {
                    id: id_for(who),
                    name: who.to_string(),
                    from_scenes: true,
                    ..Default::default()
                },
            );
            id_for(who)
        }
        None => return false,
    };
    for part in sentences(line)
        .into_iter()
        .flat_map(|s| split_long(&s))
        .collect::<Vec<_>>()
        .chunks(2)
    {
        // Two short sentences of one speaker make one close-up.
        units.push(Unit::Line(id.clone(), part.join(" "), None));
    }
    if !present.contains(&id) {
        present.push(id);
    }
    true
}

/// Where: as written (matched to a known place, or a place made for it), else a known place the
/// text mentions, else a place phrase, else where the previous idea was. Also whether the idea
/// gave it.
fn place_of(
    r: &mut Reading,
    parts: &IdeaParts,
    all_text: &str,
    prev: Option<&Idea>,
) -> (Option<String>, bool) {
    let mut place_given = true;
    let place = match &parts.place {
        Some(p) => Some(match find_place(r, p) {
            Some(known) => known,
            None => {
                let name = if is_prose(p) {
                    place_phrase(p).unwrap_or_else(|| title_case(&clip(p, 40), true))
                } else {
                    title_case(p, false)
                };
                made_place(r, &name, all_text)
            }
        }),
        None => match find_place(r, all_text) {
            Some(k) => Some(k),
            None => match place_phrase(all_text) {
                Some(name) => Some(made_place(r, &name, all_text)),
                None => {
                    place_given = false;
                    prev.and_then(|p| p.place.clone())
                        .or_else(|| r.premise_place.clone())
                }
            },
        },
    };
    (place, place_given)
}

/// The place a premise names ("who cross the moor at midnight" -> Moor), made a place of the
/// world with the premise's words about it.
pub(super) fn premise_place_of(r: &mut Reading, text: &str) -> Option<String> {
    let name = place_phrase(text)?;
    Some(made_place(r, &name, text))
}

fn made_place(r: &mut Reading, name: &str, text: &str) -> String {
    let first = sentences(text)
        .into_iter()
        .find(|s| mentions(s, name))
        .unwrap_or_else(|| clip(text, 160));
    merge_place(
        r,
        PlaceSketch {
            name: name.to_string(),
            description: first,
            ..Default::default()
        },
        true,
    )
}
