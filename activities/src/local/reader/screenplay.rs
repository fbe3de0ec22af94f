//! Screenplays, in Fountain or in the ordinary layout pasted as plain text, read with the
//! `rustwell` Fountain parser (decision 0023): each scene heading is a scene idea with its place,
//! interior or exterior and time of day; character cues give the lines and their speakers,
//! parentheticals the lines' delivery; action gives the units of action; transitions set how
//! scenes meet; the title page gives the title and credits. Notes and boneyard are not part of
//! the script (the parser drops them).

use rustwell::rich_string::RichString;
use rustwell::screenplay::{Dialogue, DialogueElement, Element, Span, TitlePage};

use super::entities::*;
use super::text::*;
use super::*;

/// A scene heading's opening word, as Fountain and screenplay software write it.
const PREFIXES: &[(&str, Option<bool>)] = &[
    ("int./ext.", None),
    ("int/ext.", None),
    ("int/ext", None),
    ("ext./int.", None),
    ("i/e.", None),
    ("i/e", None),
    ("int.", Some(true)),
    ("int", Some(true)),
    ("ext.", Some(false)),
    ("ext", Some(false)),
    ("est.", Some(false)),
    ("est", Some(false)),
];

/// The prefix a line starts a scene heading with, and whether it is an interior.
fn heading_prefix(line: &str) -> Option<(usize, Option<bool>)> {
    let l = line.trim_start().to_lowercase();
    PREFIXES.iter().find_map(|(p, interior)| {
        let rest = l.strip_prefix(p)?;
        // "INT. BUS DEPOT", "INT BUS DEPOT"; not "Interesting" or "Exterior".
        (rest.starts_with(' ') || rest.starts_with('\t')).then_some((p.len(), *interior))
    })
}

/// Whether a text is a screenplay: at least one line that is a scene heading on its own, and
/// something after it.
pub fn looks_like_screenplay(text: &str) -> bool {
    let lines: Vec<&str> = text.lines().map(str::trim).collect();
    lines.iter().enumerate().any(|(i, l)| {
        heading_prefix(l).is_some()
            && l.chars()
                .filter(|c| c.is_alphabetic())
                .all(|c| !c.is_lowercase())
            && words(l).len() <= 14
            && lines[i + 1..].iter().any(|n| !n.is_empty())
    })
}

/// A heading's parts: interior (`None`: both or not said), place, the words of its time.
pub fn heading(slug: &str) -> (Option<bool>, String, Option<String>) {
    let s = slug.trim().trim_start_matches('.');
    let (skip, interior) = heading_prefix(s).unwrap_or((0, None));
    let rest = s.trim_start()[skip..].trim();
    let parts: Vec<&str> = rest
        .split(" - ")
        .flat_map(|p| p.split(" – "))
        .flat_map(|p| p.split(" — "))
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect();
    let place = parts.first().copied().unwrap_or("").trim_end_matches('.');
    let time = (parts.len() > 1).then(|| parts[parts.len() - 1].to_string());
    (interior, title_case(&place.to_lowercase(), true), time)
}

/// The spec's time of day a heading's time words say: `None` for "CONTINUOUS", "LATER",
/// "SAME" and the like (the time goes on from the scene before).
fn heading_time(words_of_time: &str) -> Option<&'static str> {
    let w = words_of_time.to_lowercase();
    if let Some(t) = time_in(&w) {
        return Some(t);
    }
    match w.trim() {
        "day" | "days" => Some("afternoon"),
        _ => None,
    }
}

/// A character cue as a name: "MAREN (V.O.)", "MAREN (CONT'D)", "MAREN ^" -> "MAREN".
fn cue_name(d: &Dialogue) -> String {
    let raw = plain(&d.character);
    let raw = raw.split('(').next().unwrap_or(&raw);
    raw.trim().trim_end_matches('^').trim().to_string()
}

fn plain(s: &RichString) -> String {
    s.to_plain_string().trim().to_string()
}

/// A name written in capitals ("OLD TOM") as people write it ("Old Tom").
fn display_name(cue: &str) -> String {
    cue.split_whitespace()
        .map(|w| {
            let mut cs = w.chars();
            match cs.next() {
                Some(f) => f
                    .to_uppercase()
                    .chain(cs.flat_map(char::to_lowercase))
                    .collect(),
                None => String::new(),
            }
        })
        .collect::<Vec<String>>()
        .join(" ")
}

/// A transition as the spec's value: (into the next scene, out of this one).
fn transition(text: &str) -> (&'static str, &'static str) {
    let t = text.to_lowercase();
    if t.contains("dissolve") {
        ("dissolve", "dissolve")
    } else if t.contains("fade out") || t.contains("fade to black") {
        ("fade_in", "fade_out")
    } else if t.contains("fade in") {
        ("fade_in", "cut")
    } else if t.contains("wipe") {
        ("wipe", "wipe")
    } else {
        ("cut", "cut")
    }
}

/// Characters introduced in capitals with a description in brackets: "MAREN (70s, weathered,
/// a yellow oilskin) climbs the stair." -> ("MAREN", "70s, weathered, a yellow oilskin").
fn introductions(action: &str) -> Vec<(String, String)> {
    let mut out = vec![];
    let mut rest = action;
    while let Some(open) = rest.find('(') {
        let before = &rest[..open];
        let Some(close) = rest[open..].find(')') else {
            break;
        };
        let inside = rest[open + 1..open + close].trim().to_string();
        // The capitalised words right before the bracket.
        let name: Vec<&str> = before
            .split_whitespace()
            .rev()
            .take_while(|w| {
                let letters: Vec<char> = w.chars().filter(|c| c.is_alphabetic()).collect();
                letters.len() >= 2 && letters.iter().all(|c| c.is_uppercase())
            })
            .collect();
        if !name.is_empty() && !inside.is_empty() {
            let name: Vec<&str> = name.into_iter().rev().collect();
            out.push((name.join(" "), inside));
        }
        rest = &rest[open + close + 1..];
    }
    out
}

/// A screenplay's text, as Fountain reads it: each line's indentation (the ordinary layout's
/// character and dialogue columns, pasted) taken away.
fn normalise(text: &str) -> String {
    text.replace("\r\n", "\n")
        .lines()
        .map(str::trim)
        .collect::<Vec<_>>()
        .join("\n")
}

struct Scene {
    interior: Option<bool>,
    place: String,
    time: Option<String>,
    transition_in: Option<String>,
    transition_out: Option<String>,
    units: Vec<Unit>,
    action_text: Vec<String>,
    speakers: Vec<String>,
}

/// Read a screenplay into `r`: its title page, characters, places and one idea per scene
/// heading (action before the first heading is an idea of its own). Returns the ideas in order.
pub(super) fn read_screenplay(r: &mut Reading, text: &str, prev: Option<&Idea>) -> Vec<Idea> {
    let sp = rustwell::parse(normalise(text));
    if let Some(tp) = &sp.titlepage {
        title_page(r, tp);
    }
    let scenes = scenes_of(r, &sp.elements);
    roles_by_lines(r, &scenes);
    let mut ideas: Vec<Idea> = vec![];
    for s in scenes {
        let before = ideas.last().or(prev);
        if s.units.is_empty() {
            continue;
        }
        ideas.push(idea_of(r, s, before));
    }
    ideas
}

/// The title page: the film's title and its credits.
fn title_page(r: &mut Reading, tp: &TitlePage) {
    if let Some(t) = tp.title.first().map(plain).filter(|t| !t.is_empty()) {
        r.title.get_or_insert(t);
    }
    for (what, lines) in [
        ("Written by", &tp.authors),
        ("Credit", &tp.credit),
        ("Source", &tp.source),
    ] {
        let names: Vec<String> = lines.iter().map(plain).filter(|l| !l.is_empty()).collect();
        if !names.is_empty() {
            r.credits.push(format!("{what}: {}", names.join(", ")));
        }
    }
}

/// The script's scenes: one per heading, with its action, lines and transitions.
fn scenes_of(r: &mut Reading, elements: &[Span<Element>]) -> Vec<Scene> {
    let mut scenes: Vec<Scene> = vec![];
    let mut pending_in: Option<String> = None;
    for el in elements {
        match &el.inner {
            Element::Heading { slug, .. } => {
                let (interior, place, time) = heading(&plain(slug));
                scenes.push(Scene {
                    interior,
                    place,
                    time,
                    transition_in: pending_in.take(),
                    transition_out: None,
                    units: vec![],
                    action_text: vec![],
                    speakers: vec![],
                });
            }
            Element::Transition(t) => {
                let (into, out) = transition(&plain(t));
                if let Some(s) = scenes.last_mut() {
                    s.transition_out = Some(out.to_string());
                }
                // "FADE OUT." ends the film: nothing fades in after it.
                pending_in = (out != "fade_out").then(|| into.to_string());
            }
            Element::Action(a) | Element::CenteredText(a) => {
                action(r, &mut scenes, &mut pending_in, plain(a));
            }
            Element::Dialogue(d) => {
                if let Some(s) = scenes.last_mut() {
                    speak(r, s, d);
                }
            }
            Element::DualDialogue(a, b) => {
                // Spoken at once: both lines belong to the same moment, one after the other.
                if let Some(s) = scenes.last_mut() {
                    speak(r, s, a);
                    speak(r, s, b);
                }
            }
            Element::Lyrics(l) => {
                if let Some(s) = scenes.last_mut() {
                    s.units.push(Unit::Action(format!("(sung) {}", plain(l))));
                }
            }
            Element::Synopsis(_) | Element::PageBreak => {}
        }
    }
    scenes
}

/// An action paragraph: a transition the parser read as action, or the scene's action (a scene
/// of its own before the first heading), introducing the characters it names in capitals.
fn action(r: &mut Reading, scenes: &mut Vec<Scene>, pending_in: &mut Option<String>, a: String) {
    if a.is_empty() {
        return;
    }
    // "FADE IN:" and other transitions the parser read as action (capitals, a
    // colon, or a fade).
    let upper = a
        .chars()
        .filter(|c| c.is_alphabetic())
        .all(|c| c.is_uppercase());
    if upper && (a.ends_with(':') || a.to_lowercase().starts_with("fade")) {
        let (into, out) = transition(&a);
        match scenes.last_mut() {
            Some(s) if out != "cut" || !a.to_lowercase().contains("fade in") => {
                s.transition_out = Some(out.to_string());
            }
            _ => {}
        }
        *pending_in = (out != "fade_out").then(|| into.to_string());
        return;
    }
    if scenes.is_empty() {
        scenes.push(Scene {
            interior: None,
            place: String::new(),
            time: None,
            transition_in: pending_in.take(),
            transition_out: None,
            units: vec![],
            action_text: vec![],
            speakers: vec![],
        });
    }
    let s = scenes.last_mut().expect("a scene");
    for (cue, looks) in introductions(&a) {
        introduce(r, &cue, &looks);
    }
    for sentence in sentences(&a.replace('\n', " ")) {
        for part in split_long(&sentence) {
            s.units.push(Unit::Action(part));
        }
    }
    s.action_text.push(a);
}

/// Who the story is about, by how much they say: the one with the most lines leads; others who
/// speak support (a role already given stays).
fn roles_by_lines(r: &mut Reading, scenes: &[Scene]) {
    let mut said: Vec<(String, usize)> = vec![];
    for s in scenes {
        for u in &s.units {
            if let Unit::Line(id, _, _) = u {
                match said.iter_mut().find(|(w, _)| w == id) {
                    Some((_, n)) => *n += 1,
                    None => said.push((id.clone(), 1)),
                }
            }
        }
    }
    let lead = said.iter().max_by_key(|(_, n)| *n).map(|(w, _)| w.clone());
    for c in r.characters.iter_mut().filter(|c| c.role.is_empty()) {
        if said.iter().any(|(w, _)| *w == c.id) {
            c.role = if Some(&c.id) == lead.as_ref() {
                "protagonist"
            } else {
                "supporting"
            }
            .into();
        }
    }
}

/// A character seen in the script, under the name most often written for them.
fn character(r: &mut Reading, cue: &str) -> String {
    let name = display_name(cue);
    match find_character(r, &name) {
        Some(i) => r.characters[i].id.clone(),
        None => {
            merge_character(
                r,
                CharacterSketch {
                    id: id_for(&name),
                    name: name.clone(),
                    from_scenes: true,
                    ..Default::default()
                },
            );
            id_for(&name)
        }
    }
}

/// "MAREN (70s, weathered)": what the script says of how a character looks, on first sight.
fn introduce(r: &mut Reading, cue: &str, looks: &str) {
    let id = character(r, cue);
    if let Some(c) = r.characters.iter_mut().find(|c| c.id == id) {
        // Described by the script: a character of the story, not only a voice in it.
        c.from_scenes = false;
        if !c.appearance.contains(looks) {
            if !c.appearance.is_empty() {
                c.appearance.push_str("; ");
            }
            c.appearance.push_str(looks);
        }
    }
}

fn speak(r: &mut Reading, s: &mut Scene, d: &Dialogue) {
    let cue = cue_name(d);
    if cue.is_empty() {
        return;
    }
    let id = character(r, &cue);
    if !s.speakers.contains(&id) {
        s.speakers.push(id.clone());
    }
    let mut delivery: Option<String> = None;
    let mut words_said: Vec<String> = vec![];
    let flush = |s: &mut Scene, delivery: &Option<String>, said: &mut Vec<String>| {
        if said.is_empty() {
            return;
        }
        let text = said.join(" ");
        said.clear();
        // Long speeches are cut into moments of a few seconds, each with its delivery.
        for part in sentences(&text)
            .into_iter()
            .flat_map(|x| split_long(&x))
            .collect::<Vec<_>>()
            .chunks(2)
        {
            s.units
                .push(Unit::Line(id.clone(), part.join(" "), delivery.clone()));
        }
    };
    for e in &d.elements {
        match e {
            DialogueElement::Parenthetical(p) => {
                flush(s, &delivery, &mut words_said);
                let p = plain(p);
                delivery = Some(
                    p.trim_start_matches('(')
                        .trim_end_matches(')')
                        .trim()
                        .to_string(),
                )
                .filter(|x| !x.is_empty());
            }
            DialogueElement::Line(l) => words_said.push(plain(l).replace('\n', " ")),
        }
    }
    flush(s, &delivery, &mut words_said);
}

fn idea_of(r: &mut Reading, s: Scene, prev: Option<&Idea>) -> Idea {
    let all_text = s.action_text.join(" ");
    let place = if s.place.is_empty() {
        prev.and_then(|p| p.place.clone())
    } else {
        let description = format!(
            "{} of {}. {}",
            match s.interior {
                Some(true) => "Interior",
                Some(false) => "Exterior",
                None => "Inside and outside",
            },
            s.place.to_lowercase(),
            sentences(&all_text).into_iter().next().unwrap_or_default()
        );
        Some(match find_place(r, &s.place) {
            Some(known) => known,
            // Described by the script's heading and first action: not a place made up.
            None => merge_place(
                r,
                PlaceSketch {
                    name: s.place.clone(),
                    description: description.trim().to_string(),
                    ..Default::default()
                },
                all_text.is_empty(),
            ),
        })
    };
    let time_given =
        s.time.as_deref().and_then(heading_time).is_some() || time_in(&all_text).is_some();
    let time = s
        .time
        .as_deref()
        .and_then(heading_time)
        .map(str::to_string)
        .or_else(|| time_in(&all_text).map(str::to_string))
        .or_else(|| prev.map(|p| p.time_of_day.clone()))
        .unwrap_or_else(|| "afternoon".into());
    let weather = weather_in(&all_text)
        .map(str::to_string)
        .or_else(|| prev.filter(|p| p.place == place).map(|p| p.weather.clone()))
        .unwrap_or_else(|| "clear".into());
    let mut characters = s.speakers.clone();
    for c in &r.characters {
        if mentions(&all_text, &c.name) && !characters.contains(&c.id) {
            characters.push(c.id.clone());
        }
    }
    let props: Vec<String> = r
        .props
        .iter()
        .filter(|p| mentions_object(&all_text, &p.name))
        .map(|p| p.name.clone())
        .collect();
    let summary = sentences(&all_text)
        .into_iter()
        .next()
        .or_else(|| {
            s.units.iter().find_map(|u| match u {
                Unit::Line(_, l, _) => Some(format!("\"{l}\"")),
                _ => None,
            })
        })
        .unwrap_or_default();
    Idea {
        title: None,
        summary,
        place_given: !s.place.is_empty(),
        place,
        time_of_day: time,
        time_given,
        weather,
        units: s.units,
        characters,
        props,
        interior: s.interior,
        transition_in: s.transition_in,
        transition_out: s.transition_out,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headings_give_place_interior_and_time() {
        assert_eq!(
            heading("INT. BUS DEPOT - NIGHT"),
            (Some(true), "Bus Depot".into(), Some("NIGHT".into()))
        );
        assert_eq!(
            heading("EXT. THE OLD HARBOUR – DAWN"),
            (Some(false), "Old Harbour".into(), Some("DAWN".into()))
        );
        assert_eq!(
            heading("INT./EXT. MAREN'S CAR - MOVING - DAY"),
            (None, "Maren's Car".into(), Some("DAY".into()))
        );
        assert_eq!(heading_time("CONTINUOUS"), None);
        assert_eq!(heading_time("LATER"), None);
        assert_eq!(heading_time("DAY"), Some("afternoon"));
        assert_eq!(heading_time("MIDNIGHT"), Some("night"));
        assert!(looks_like_screenplay("INT. KITCHEN - DAY\n\nTom eats."));
        assert!(!looks_like_screenplay(
            "Interesting: the kitchen at night.\nTom eats."
        ));
        assert!(!looks_like_screenplay("Int. we go inside the kitchen."));
    }

    #[test]
    fn introductions_give_looks() {
        assert_eq!(
            introductions("MAREN (70s, weathered, yellow oilskin) climbs. OLD TOM (12) waits."),
            vec![
                (
                    "MAREN".to_string(),
                    "70s, weathered, yellow oilskin".to_string()
                ),
                ("OLD TOM".to_string(), "12".to_string())
            ]
        );
        assert_eq!(display_name("OLD TOM"), "Old Tom");
    }
}
