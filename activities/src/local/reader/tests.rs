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
            Unit::Line(who, l, _) => Some((who.clone(), l.clone())),
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
        matches!(&r.ideas[1].units[0], Unit::Line(w, l, _) if w == "maren" && l == "Where is Tom?"),
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
        matches!(&r.ideas[0].units[1], Unit::Line(w, _, _) if w == "mira"),
        "{:?}",
        r.ideas[0].units
    );
}

const NIGHT_BUS: &str = include_str!("../../../../examples/night-bus/screenplay.fountain");

/// (place, interior, time, speakers in order, lines with their delivery) of each idea.
type Shape = Vec<(
    String,
    Option<bool>,
    String,
    Vec<(String, String, Option<String>)>,
)>;

fn shape(r: &Reading) -> Shape {
    r.ideas
        .iter()
        .map(|i| {
            (
                i.place.clone().unwrap_or_default(),
                i.interior,
                i.time_of_day.clone(),
                i.units
                    .iter()
                    .filter_map(|u| match u {
                        Unit::Line(w, l, how) => Some((w.clone(), l.clone(), how.clone())),
                        Unit::Action(_) => None,
                    })
                    .collect(),
            )
        })
        .collect()
}

#[test]
fn a_fountain_screenplay_makes_one_idea_per_heading() {
    let r = read(&snap(json!({"my_script": [{"text": NIGHT_BUS}]})));
    assert_eq!(r.title.as_deref(), Some("The Night Bus"));
    assert!(
        r.credits.iter().any(|c| c.contains("Slate Examples")),
        "{:?}",
        r.credits
    );
    let s = shape(&r);
    let places: Vec<(&str, Option<bool>, &str)> = s
        .iter()
        .map(|(p, i, t, _)| (p.as_str(), *i, t.as_str()))
        .collect();
    assert_eq!(
        places,
        vec![
            ("Bus Depot", Some(false), "night"),
            ("Night Bus", Some(true), "night"),
            ("Coast Road", Some(false), "night"),
            ("Night Bus", Some(true), "night"),
            ("Lighthouse Point", Some(false), "dawn"),
            ("Lighthouse Kitchen", Some(true), "morning"),
        ]
    );
    // Every line with its speaker, parentheticals kept as the delivery.
    let lines: Vec<(&str, &str, Option<&str>)> = s
        .iter()
        .flat_map(|(_, _, _, l)| l.iter())
        .map(|(w, l, h)| (w.as_str(), l.as_str(), h.as_deref()))
        .collect();
    assert_eq!(
        lines[0],
        (
            "ada",
            "It's the last one. If we miss it, we walk.",
            Some("whispering")
        )
    );
    assert_eq!(lines[1], ("tom", "We won't miss it.", None));
    assert_eq!(lines[2].0, "mrs-okafor");
    assert_eq!(lines[3], ("ada", "Told you it was real.", Some("to Tom")));
    assert_eq!(
        lines[4],
        ("tom", "Sit down before she changes her mind.", None)
    );
    assert_eq!(lines[5].0, "radio");
    assert_eq!(lines[6], ("tom", "Three more stops.", Some("quietly")));
    assert_eq!(
        lines[7],
        ("mrs-okafor", "Two, if the bridge is still there.", None)
    );
    assert_eq!(lines.len(), 10, "{lines:?}");
    let names: Vec<&str> = r.characters.iter().map(|c| c.name.as_str()).collect();
    for n in ["Ada", "Tom", "Mrs. Okafor", "Radio"] {
        assert!(names.contains(&n), "{n} in {names:?}");
    }
    // Introduced in capitals with a description: their looks.
    let ada = r.characters.iter().find(|c| c.name == "Ada").unwrap();
    assert!(
        ada.appearance.contains("green wellies"),
        "{}",
        ada.appearance
    );
    // Notes and boneyard are not part of the script.
    let all: String = r
        .ideas
        .iter()
        .flat_map(|i| i.units.iter())
        .map(|u| match u {
            Unit::Action(a) => a.clone(),
            Unit::Line(_, l, _) => l.clone(),
        })
        .collect();
    assert!(
        !all.contains("warm light") && !all.contains("fare"),
        "{all}"
    );
    // Transitions: a dissolve into the dawn, a fade out at the end.
    assert_eq!(r.ideas[3].transition_out.as_deref(), Some("dissolve"));
    assert_eq!(r.ideas[4].transition_in.as_deref(), Some("dissolve"));
    assert_eq!(r.ideas[5].transition_out.as_deref(), Some("fade_out"));
}

#[test]
fn a_screenplay_pasted_as_plain_text_reads_the_same() {
    // The ordinary layout: cues and dialogue indented, as copied from a PDF, inside a JSON
    // field of a collection of the user's own.
    let plain: String = NIGHT_BUS
        .lines()
        .map(|l| {
            let t = l.trim();
            let cue = !t.is_empty()
                && t.chars()
                    .filter(|c| c.is_alphabetic())
                    .all(|c| c.is_uppercase())
                && !t.starts_with("INT")
                && !t.starts_with("EXT")
                && !t.ends_with(':');
            if cue {
                format!("                         {t}")
            } else if t.starts_with('(') {
                format!("                    {t}")
            } else {
                t.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    let fountain = read(&snap(json!({"script": [{"text": NIGHT_BUS}]})));
    let pasted = read(&snap(
        json!({"Film Stuff": [{"what": "draft", "body": plain}]}),
    ));
    assert_eq!(shape(&fountain), shape(&pasted));
}

#[test]
fn fragments_set_the_time_of_what_follows_and_brackets_stay_whole() {
    let r = read(&snap(json!({
        "my_ideas": [
            {"text": "Ada (9, green wellies. Always muddy.) runs down to the harbour wall."},
            {"text": "Dusk."},
            {"text": "Tom lights the lamp in the lighthouse kitchen."},
            {"text": "Later. Rain. Tom and Ada share soup by the stove in the lighthouse kitchen."}
        ]
    })));
    let texts: Vec<String> = r
        .ideas
        .iter()
        .flat_map(|i| i.units.iter())
        .filter_map(|u| match u {
            Unit::Action(a) => Some(a.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(r.ideas.len(), 3, "no scene of a fragment: {texts:?}");
    for t in &texts {
        assert!(
            words(t).len() > 3,
            "a fragment became a scene: {t:?} in {texts:?}"
        );
        assert_eq!(
            t.matches('(').count(),
            t.matches(')').count(),
            "cut inside brackets: {t}"
        );
    }
    // "Dusk." sets the time of the next idea; "Rain." the weather of its own.
    assert_eq!(r.ideas[1].time_of_day, "evening", "{:?}", r.ideas[1]);
    assert_eq!(r.ideas[2].weather, "rainy");
}

#[test]
fn a_night_film_is_drawn_at_night() {
    // The premise says midnight and moonlight; no scene says when.
    let r = read(&snap(json!({
        "premise": [{"logline": "Two cousins cross the moor at midnight, by moonlight, to find a lost dog."}],
        "my_ideas": [
            {"text": "Ada climbs the stile at the edge of the moor."},
            {"text": "Tom hears the dog barking across the bog."},
            {"text": "At dawn they carry the dog home to the farm."}
        ]
    })));
    let times: Vec<&str> = r.ideas.iter().map(|i| i.time_of_day.as_str()).collect();
    assert_eq!(times, vec!["night", "night", "dawn"], "{:?}", r.ideas);
}

#[test]
fn a_premise_is_no_scene_and_gives_the_logline_and_looks() {
    let r = read(&snap(json!({
        "our_story": [
            {"text": "This is the story of two cousins, Ada (9, green wellies) and Tom (12, freckles, round glasses), who cross the moor to find a lost dog."},
            {"text": "Ada climbs the stile at the edge of the moor while Tom holds the torch."},
            {"text": "Tom hears the dog barking across the bog and wades in after it."},
            {"text": "They carry the dog home to the farm as the sun comes up."}
        ]
    })));
    assert_eq!(
        r.ideas.len(),
        3,
        "the premise makes no scene: {:?}",
        r.ideas
    );
    assert!(r.ideas.iter().all(|i| !i.summary.contains("story of")));
    assert!(
        r.logline
            .as_deref()
            .unwrap_or("")
            .contains("story of two cousins")
    );
    let ada = r
        .characters
        .iter()
        .find(|c| c.name == "Ada")
        .expect("Ada from the premise");
    assert!(
        ada.appearance.contains("green wellies"),
        "{}",
        ada.appearance
    );
    assert!(!ada.from_scenes);
    let tom = r.characters.iter().find(|c| c.name == "Tom").expect("Tom");
    assert!(
        tom.appearance.contains("round glasses"),
        "{}",
        tom.appearance
    );
    // Present in the scenes that name them.
    assert!(r.ideas[0].characters.contains(&ada.id));
}

#[test]
fn looks_written_in_prose_reach_the_characters() {
    // Ages, clothes, hair and glasses outside brackets, in a premise and in a note; the names
    // are cut apart so each keeps their own.
    let r = read(&snap(json!({
        "my_notes": [
            {"text": "This is the story of Wren, a nine-year-old with red hair and a green duffle coat, and her grandfather Abel, tall and bespectacled, who keep the last lighthouse on the coast."},
            {"text": "Abel always wears his black fisherman's cap. Wren never takes off her yellow wellies."}
        ],
        "ideas": [
            {"text": "Wren runs up the spiral stairs with the oil can."},
            {"text": "Abel trims the wick while the storm rises."}
        ]
    })));
    let who = |n: &str| {
        r.characters
            .iter()
            .find(|c| c.name == n)
            .unwrap_or_else(|| panic!("{n}: {:?}", r.characters))
    };
    let wren = looks_of(&who("Wren").appearance);
    assert_eq!(wren.age, Some(9), "{}", who("Wren").appearance);
    assert_eq!(wren.hair.as_deref(), Some("#a8432a"));
    assert_eq!(wren.top.as_deref(), Some("#3f8f4a"));
    assert_eq!(wren.feet.as_deref(), Some("#e8cf3a"));
    assert!(!wren.glasses, "Abel's glasses stay Abel's");
    let abel = looks_of(&who("Abel").appearance);
    assert!(abel.glasses, "{}", who("Abel").appearance);
    assert_eq!(abel.height, Some(1.12));
    assert_eq!(abel.hat.as_deref(), Some("#151517"));
    assert_eq!(abel.top, None, "Wren's coat stays Wren's");
    // What she wears on top is her colour.
    assert_eq!(who("Wren").color.as_deref(), Some("#3f8f4a"));
    // The rest of the sentence is not appearance.
    assert!(!who("Abel").appearance.contains("lighthouse"));
}

#[test]
fn a_premise_gives_the_place_of_ideas_that_name_none() {
    let r = read(&snap(json!({
        "pitch": [{"text": "This is the story of Wren and her grandfather Abel, who keep the last lighthouse on a wild northern coast."}],
        "ideas": [
            {"text": "Wren polishes the great lens until it shines."},
            {"text": "Abel tells Wren about the wreck of the Mary Rose."},
            {"text": "A ship's horn sounds out of the fog and Wren runs to the window."}
        ]
    })));
    assert_eq!(r.ideas.len(), 3, "{:?}", r.ideas);
    let place = r.premise_place.clone().expect("the premise names a place");
    assert!(
        ["Lighthouse", "Wild Northern Coast"].contains(&place.as_str()),
        "a place the premise names: {place}"
    );
    assert!(
        r.places.iter().any(|p| p.name == place),
        "a place of the world"
    );
    for i in &r.ideas {
        assert_eq!(i.place.as_deref(), Some(place.as_str()), "{}", i.summary);
    }
    // Wren leads: the premise is her story.
    let wren = r
        .characters
        .iter()
        .find(|c| c.name == "Wren")
        .expect("Wren");
    assert_eq!(wren.role, "protagonist");
    assert!(r.characters.iter().any(|c| c.name == "Abel"));
    assert!(
        !r.characters.iter().any(|c| c.name.contains("Mary")),
        "a ship is no one"
    );
}

#[test]
fn the_most_used_spelling_of_a_name_wins() {
    let r = read(&snap(json!({
        "raw_characters": [{"name": "ada", "appearance": "nine, green wellies"}],
        "my_ideas": [
            {"text": "Ada climbs the stile at the edge of the moor."},
            {"text": "Tom calls Ada back from the bog."},
            {"text": "Ada and Tom carry the dog home."}
        ]
    })));
    let names: Vec<&str> = r.characters.iter().map(|c| c.name.as_str()).collect();
    assert!(
        names.contains(&"Ada") && !names.contains(&"ada"),
        "{names:?}"
    );
}

#[test]
fn props_are_attached_to_the_scenes_that_mention_them() {
    let r = read(&snap(json!({
        "props": [{"name": "The Brass Key", "description": "a small brass key on a red ribbon"}],
        "my_ideas": [
            {"text": "Ada finds the key under the doormat of the farmhouse."},
            {"text": "Tom climbs the hayloft of the barn."},
            {"text": "In the cellar, Ada tries all the keys in the old door."}
        ]
    })));
    let with: Vec<bool> = r
        .ideas
        .iter()
        .map(|i| i.props.contains(&"Brass Key".to_string()))
        .collect();
    assert_eq!(with, vec![true, false, true], "{:?}", r.ideas);
}

const MOOR: &str = include_str!("../../../../examples/moor-treatment/treatment.md");

#[test]
fn a_prose_treatment_is_read_by_its_sections() {
    let r = read(&snap(
        json!({"treatment": [{"file": "treatment.md", "text": MOOR}]}),
    ));
    assert_eq!(r.title.as_deref(), Some("The Lost Dog of Harrow Moor"));
    assert!(
        r.logline
            .as_deref()
            .unwrap_or("")
            .starts_with("This is the story of two cousins")
    );
    let names: Vec<&str> = r.characters.iter().map(|c| c.name.as_str()).collect();
    for n in ["Ada", "Tom", "Bess"] {
        assert!(names.contains(&n), "{n} in {names:?}");
    }
    let ada = r.characters.iter().find(|c| c.name == "Ada").unwrap();
    assert!(ada.appearance.contains("green wellies"), "{ada:?}");
    // Five scene paragraphs; "The wind drops." is a scene of its own, "Dawn." only a time.
    assert_eq!(
        r.ideas.len(),
        5,
        "{:?}",
        r.ideas.iter().map(|i| &i.summary).collect::<Vec<_>>()
    );
    // A film at midnight by moonlight: night until the dawn.
    let times: Vec<&str> = r.ideas.iter().map(|i| i.time_of_day.as_str()).collect();
    assert_eq!(
        times,
        vec!["night", "night", "night", "night", "dawn"],
        "{times:?}"
    );
    assert!(
        r.palette.contains(&"#e3b341".to_string()),
        "{:?}",
        r.palette
    );
    // Dialogue in the scenes, with its speakers.
    let lines: Vec<(String, String)> = r.ideas[0]
        .units
        .iter()
        .filter_map(|u| match u {
            Unit::Line(w, l, _) => Some((w.clone(), l.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(lines.len(), 2, "{:?}", r.ideas[0].units);
}
