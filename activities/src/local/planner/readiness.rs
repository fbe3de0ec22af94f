//! Readiness: what each department has to work with, scored from what the reader found.
//!
//! Every missing item is said in plain words a person can act on: what to write, with an
//! example, never a field name to guess. The example texts are suggestions, not formats: any
//! wording the reader understands will do.

use crate::local::reader::{Reading, clip};
use crate::model::{DepartmentReadiness, READY_SCORE};

/// A scored part: present?, weight, what to add when it is not.
type Part = (bool, u32, String);

fn department(name: &str, parts: &[Part]) -> DepartmentReadiness {
    let total: u32 = parts.iter().map(|(_, w, _)| *w).sum();
    let got: u32 = parts
        .iter()
        .filter(|(ok, _, _)| *ok)
        .map(|(_, w, _)| *w)
        .sum();
    let score = ((got * 100) / total.max(1)) as u8;
    DepartmentReadiness {
        department: name.into(),
        score,
        ready: score >= READY_SCORE,
        missing_items: parts
            .iter()
            .filter(|(ok, _, _)| !ok)
            .map(|(_, _, m)| m.clone())
            .collect(),
    }
}

/// Each department's score and what it misses.
pub(super) fn score(r: &Reading) -> Vec<DepartmentReadiness> {
    vec![
        department("character", &character(r)),
        department("world", &world(r)),
        department("visual", &visual(r)),
        department("story", &story(r)),
        department("production", &production(r)),
        department("audio", &audio(r)),
    ]
}

/// Someone described, and how each character looks and who they are.
fn character(r: &Reading) -> Vec<Part> {
    let described: Vec<_> = r.characters.iter().filter(|c| !c.from_scenes).collect();
    let mut character = vec![(
        !described.is_empty(),
        40,
        "at least one character: a note about a person in the story, starting with their name (for example \"Maren, the keeper's daughter, twelve, in a yellow raincoat\")".to_string(),
    )];
    let n = r.characters.len().max(1) as u32;
    for c in &r.characters {
        let share = (60 / n).max(1);
        character.push((
            !c.appearance.is_empty() || !c.costume.is_empty(),
            share / 2,
            format!("how {} looks (face, build, clothes)", c.name),
        ));
        character.push((
            !c.personality.is_empty() || !c.role.is_empty() || !c.background.is_empty(),
            share - share / 2,
            format!(
                "who {} is (their part in the story, or what they are like)",
                c.name
            ),
        ));
    }
    character
}

/// A rule, a place and a logline.
fn world(r: &Reading) -> Vec<Part> {
    let world = vec![
        (
            !r.rules.is_empty(),
            40,
            "a rule of the world, written as a note (for example \"The lamp must never go dark on a storm night\")".to_string(),
        ),
        (
            !r.places.is_empty(),
            30,
            "at least one place where the story happens".to_string(),
        ),
        (
            r.logline.as_ref().is_some_and(|l| !l.is_empty()),
            30,
            "what the film is about, in one sentence (a logline)".to_string(),
        ),
    ];
    world
}

/// A note on the look and colours for the palette.
fn visual(r: &Reading) -> Vec<Part> {
    let any_colours = !r.palette.is_empty()
        || r.places.iter().any(|p| !p.palette.is_empty())
        || r.characters.iter().any(|c| c.color.is_some());
    let visual = vec![
        (
            !r.style.is_empty(),
            50,
            "a note on the film's look or mood (for example \"Tone: warm storybook light against deep blue nights\")".to_string(),
        ),
        (
            any_colours,
            50,
            "colours for the palette, by name or code (for example \"navy, amber and #c0392b\")".to_string(),
        ),
    ];
    visual
}

/// Three scene ideas, and where each happens.
fn story(r: &Reading) -> Vec<Part> {
    let mut story = vec![];
    for i in 0..3 {
        story.push((
            r.ideas.len() > i,
            20,
            if r.ideas.is_empty() && i == 0 {
                "scene ideas: what happens, a sentence or more each (at least three make a film)"
                    .to_string()
            } else {
                format!("a scene idea {} (what happens next, in a sentence)", i + 1)
            },
        ));
    }
    let placeless: Vec<String> = r
        .ideas
        .iter()
        .enumerate()
        // A scene in the place the premise gives the whole film is placed.
        .filter(|(_, i)| {
            !i.place_given && (r.premise_place.is_none() || i.place != r.premise_place)
        })
        .map(|(n, i)| format!("{} (\"{}\")", n + 1, clip(&i.summary, 40)))
        .collect();
    story.push((
        !r.ideas.is_empty() && placeless.is_empty(),
        40,
        if placeless.is_empty() {
            "where each scene idea happens".to_string()
        } else {
            format!("where scene idea {} happens", placeless.join(", "))
        },
    ));
    story
}

/// A prop, and each place described.
fn production(r: &Reading) -> Vec<Part> {
    let undescribed: Vec<String> = r
        .places
        .iter()
        .filter(|p| p.made)
        .map(|p| p.name.clone())
        .collect();
    let production = vec![
        (
            !r.props.is_empty(),
            50,
            "at least one object that matters to the story (a prop), with what it looks like"
                .to_string(),
        ),
        (
            !r.places.is_empty() && undescribed.is_empty(),
            50,
            if r.places.is_empty() {
                "a description of each place where the story happens".to_string()
            } else {
                format!("a description of: {}", undescribed.join(", "))
            },
        ),
    ];
    production
}

/// A line of dialogue, and how each character sounds.
fn audio(r: &Reading) -> Vec<Part> {
    let lines = r
        .ideas
        .iter()
        .flat_map(|i| &i.units)
        .filter(|u| matches!(u, crate::local::reader::Unit::Line(..)))
        .count();
    let silent: Vec<String> = r
        .characters
        .iter()
        .filter(|c| c.voice.is_empty())
        .map(|c| c.name.clone())
        .collect();
    let audio = vec![
        (
            lines > 0,
            50,
            "at least one line of dialogue, in quotes with who says it (for example Maren: \"Keep it lit.\")".to_string(),
        ),
        (
            !r.characters.is_empty() && silent.is_empty(),
            50,
            if r.characters.is_empty() {
                "how each character sounds".to_string()
            } else {
                format!("how {} sound{} (a voice note: low and slow, bright and quick...)", silent.join(", "), if silent.len() == 1 { "s" } else { "" })
            },
        ),
    ];
    audio
}
