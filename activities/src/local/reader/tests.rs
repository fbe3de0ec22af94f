use serde_json::{Value, json};

use super::*;

fn snap(collections: Value) -> GatherSnapshot {
    GatherSnapshot {
        project: "p".into(),
        title: "The Storm Lamp".into(),
        collections: serde_json::from_value(collections).unwrap(),
    }
}

/// The new user's data from the issue: plain `text`, notes as `note`, characters with name,
/// role and appearance.
fn new_user() -> GatherSnapshot {
    snap(json!({
        "raw_characters": [
            {"name": "Maren", "role": "lead", "appearance": "twelve, yellow raincoat, wild hair"},
            {"name": "Old Tom", "role": "the keeper", "appearance": "white beard, oilskin"}
        ],
        "raw_scenes": [
            {"text": "Maren runs along the harbour wall as the storm comes in.", "location": "Harbour Wall", "time_of_day": "dusk"},
            {"text": "She climbs the lighthouse stair. Old Tom is asleep at the top.", "location": "Lighthouse Stair", "time_of_day": "night"},
            {"text": "Maren: \"Wake up! The lamp is out!\"", "location": "Lantern Room", "time_of_day": "night"},
            {"text": "Together they strike a match and the great lamp catches.", "location": "Lantern Room", "time_of_day": "night"},
            {"text": "At dawn a fishing boat comes home through the fog.", "location": "Harbour", "time_of_day": "dawn"}
        ],
        "raw_notes": [
            {"note": "World rule: the lamp must never be dark on a storm night."},
            {"note": "Tone: wet, windy, brave. Navy and amber, #1f3a5f."}
        ]
    }))
}

#[test]
fn a_new_users_gather_data_is_understood() {
    let r = read(&new_user());
    assert_eq!(r.characters.len(), 2);
    assert_eq!(r.ideas.len(), 5, "every idea is a scene idea");
    assert!(r.ideas.iter().all(|i| !i.units.is_empty()));
    assert_eq!(r.rules.len(), 1, "{:?}", r.rules);
    assert!(r.rules[0].1.contains("never be dark"));
    assert_eq!(r.style.len(), 1);
    assert!(
        r.palette.contains(&"#1f3a5f".to_string()),
        "{:?}",
        r.palette
    );
    assert!(r.palette.len() >= 3, "navy and amber too: {:?}", r.palette);
    // The line of dialogue is Maren's, and she is present.
    let line = r.ideas[2]
        .units
        .iter()
        .find_map(|u| match u {
            Unit::Line(who, l) => Some((who.clone(), l.clone())),
            _ => None,
        })
        .unwrap();
    assert_eq!(line.0, "maren");
    assert!(line.1.starts_with("Wake up!"));
    // "Old Tom is asleep" puts Old Tom in the second idea.
    assert!(r.ideas[1].characters.contains(&"old-tom".to_string()));
    // Places the ideas name and no document describes are made for them.
    let names: Vec<&str> = r.places.iter().map(|p| p.name.as_str()).collect();
    for n in [
        "Harbour Wall",
        "Lighthouse Stair",
        "Lantern Room",
        "Harbour",
    ] {
        assert!(names.contains(&n), "{n} in {names:?}");
    }
    assert!(r.places.iter().all(|p| p.made));
    assert_eq!(r.ideas[0].time_of_day, "evening", "dusk is evening");
    assert_eq!(r.ideas[0].weather, "stormy");
    assert_eq!(r.ideas[4].weather, "foggy");
}

#[test]
fn duplicates_merge_and_contradictions_are_noted_later_wins() {
    let r = read(&snap(json!({
        "raw_characters": [
            {"name": "Maren", "appearance": "short dark hair"},
            {"name": " maren ", "appearance": "long red hair", "voice": "quick"},
            {"name": "MAREN"}
        ],
        "people": [{"name": "Tom", "personality": "grumpy"}]
    })));
    assert_eq!(r.characters.len(), 2, "{:?}", r.characters);
    let m = r.characters.iter().find(|c| c.name == "Maren").unwrap();
    assert_eq!(m.appearance, "long red hair", "the later wins");
    assert_eq!(m.voice, "quick");
    assert_eq!(r.contradictions.len(), 1, "{:?}", r.contradictions);
    assert!(r.contradictions[0].contains("short dark hair"));
}

#[test]
fn one_line_ideas_each_make_a_scene_and_find_their_place() {
    let r = read(&snap(json!({
        "ideas": [
            {"idea": "A girl finds a lamp in the attic"},
            {"idea": "She carries it through the forest at night"},
            {"idea": "Silence"}
        ]
    })));
    assert_eq!(r.ideas.len(), 3);
    assert_eq!(r.ideas[0].place.as_deref(), Some("Attic"));
    assert_eq!(r.ideas[1].place.as_deref(), Some("Forest"));
    assert_eq!(r.ideas[1].time_of_day, "night");
    assert_eq!(r.ideas[2].place.as_deref(), Some("Forest"), "carried over");
    assert!(!r.ideas[2].place_given);
}

#[test]
fn a_summary_beside_its_beats_is_not_a_scene_of_its_own() {
    let r = read(&snap(json!({
        "raw_scenes": [{
            "summary": "As the market closes, Mira finds a warm lantern under a stall.",
            "beats": ["The market packs up as the light goes.", "Mira finds the lantern under a fish stall."]
        }]
    })));
    let actions = r.ideas[0]
        .units
        .iter()
        .filter(|u| matches!(u, Unit::Action(_)))
        .count();
    assert_eq!(actions, 2, "{:?}", r.ideas[0].units);
}

#[test]
fn long_ideas_are_cut_into_scenes_that_fit() {
    let long = "Maren runs down the stair with the lamp in both hands, the wind screaming through the broken panes, and at the bottom she finds the door jammed shut by the sea. She pushes. It gives. Outside, the whole harbour is waiting in the rain, every lantern in the town lit for her, and Old Tom stands at the front of them with his cap in his hands.";
    let r = read(&snap(json!({"raw_scenes": [{"text": long}]})));
    let units = &r.ideas[0].units;
    assert!(units.len() >= 5, "{units:?}");
    for u in units {
        if let Unit::Action(a) = u {
            assert!(words(a).len() <= MAX_UNIT_WORDS, "{a}");
        }
    }
}

#[test]
fn notes_carry_labels_ideas_characters_and_titles() {
    let r = read(&snap(json!({
        "raw_notes": [
            {"text": "Title: Salt and Lamp"},
            {"text": "Scene 1: Maren wakes in the cottage kitchen at dawn."},
            {"text": "Scene 2: \"Where is Tom?\" asks Maren, on the empty quay."},
            {"text": "Character: Maren, twelve, fierce, in a yellow raincoat"},
            {"text": "The sea here always takes something back."}
        ],
        "user_inputs": [{"kind": "logline", "value": "A girl keeps a lighthouse alive for one night."}]
    })));
    assert_eq!(r.title.as_deref(), Some("Salt and Lamp"));
    assert_eq!(
        r.logline.as_deref(),
        Some("A girl keeps a lighthouse alive for one night.")
    );
    assert_eq!(r.ideas.len(), 2);
    assert_eq!(r.characters.len(), 1);
    assert_eq!(r.characters[0].name, "Maren");
    assert!(r.characters[0].costume.contains("yellow raincoat"));
    assert_eq!(r.rules.len(), 1, "always makes a rule: {:?}", r.rules);
    assert!(
        matches!(&r.ideas[1].units[0], Unit::Line(w, l) if w == "maren" && l == "Where is Tom?"),
        "{:?}",
        r.ideas[1].units
    );
    assert_eq!(r.ideas[0].place.as_deref(), Some("Cottage Kitchen"));
}

#[test]
fn dialogue_pairs_are_found_whatever_their_keys_are_called() {
    let r = read(&snap(json!({
        "raw_characters": [{"name": "Mira"}],
        "raw_scenes": [{"what": "Mira finds the lantern under a stall.",
                        "spoken": [{"a": "Mira", "b": "It's warm. Why is it warm?"}]}]
    })));
    assert!(
        matches!(&r.ideas[0].units[1], Unit::Line(w, _) if w == "mira"),
        "{:?}",
        r.ideas[0].units
    );
}
