//! Looks: the drawable facts of how a character looks, read from what people write about them.
//!
//! People describe a character in brackets ("Ada (9, green wellies)"), in appositions ("Tom,
//! twelve and freckled, in a yellow raincoat"), in an appearance field ("tall, round glasses,
//! red hair") or in a costume field. The storyboard can draw a handful of those facts: the colour
//! of what is worn on top, below and on the feet, a hat, hair colour, glasses, and how tall the
//! person stands (from words like "tall" or from an age). [`looks_of`] reads them; [`look_phrases`]
//! picks the phrases that carry them out of a longer sentence, so that facts written in a premise
//! reach the character's appearance without the rest of the sentence.
//!
//! Garments are matched by their nouns (plural or singular) and take the colour written in the
//! three words before them, within the same clause ("a long red wool coat"). Negations ("no
//! glasses", "without a hat") are honoured.

use super::text::words;
use crate::model::Looks;

use super::lexicon::COLOR_NAMES;

/// Where on the body a garment is worn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    Top,
    Legs,
    Feet,
    Hat,
}

#[rustfmt::skip]
const GARMENTS: &[(&str, Slot)] = &[
    ("coat", Slot::Top), ("raincoat", Slot::Top), ("overcoat", Slot::Top), ("jacket", Slot::Top),
    ("anorak", Slot::Top), ("parka", Slot::Top), ("cardigan", Slot::Top), ("jumper", Slot::Top),
    ("sweater", Slot::Top), ("pullover", Slot::Top), ("hoodie", Slot::Top), ("shirt", Slot::Top),
    ("tshirt", Slot::Top), ("blouse", Slot::Top), ("dress", Slot::Top), ("gown", Slot::Top),
    ("robe", Slot::Top), ("robes", Slot::Top), ("cloak", Slot::Top), ("cape", Slot::Top),
    ("tunic", Slot::Top), ("waistcoat", Slot::Top), ("vest", Slot::Top), ("uniform", Slot::Top),
    ("suit", Slot::Top), ("mac", Slot::Top), ("blazer", Slot::Top), ("poncho", Slot::Top),
    ("smock", Slot::Top), ("frock", Slot::Top), ("kimono", Slot::Top), ("apron", Slot::Top),
    ("scarf", Slot::Top), ("shawl", Slot::Top), ("overalls", Slot::Top), ("jersey", Slot::Top),
    ("fleece", Slot::Top), ("windbreaker", Slot::Top), ("pinafore", Slot::Top),
    ("trousers", Slot::Legs), ("pants", Slot::Legs), ("jeans", Slot::Legs), ("skirt", Slot::Legs),
    ("shorts", Slot::Legs), ("leggings", Slot::Legs), ("tights", Slot::Legs),
    ("breeches", Slot::Legs), ("kilt", Slot::Legs), ("dungarees", Slot::Legs),
    ("slacks", Slot::Legs), ("chinos", Slot::Legs), ("stockings", Slot::Legs),
    ("boots", Slot::Feet), ("boot", Slot::Feet), ("wellies", Slot::Feet), ("welly", Slot::Feet),
    ("wellingtons", Slot::Feet), ("gumboots", Slot::Feet), ("shoes", Slot::Feet),
    ("shoe", Slot::Feet), ("trainers", Slot::Feet), ("sneakers", Slot::Feet),
    ("sandals", Slot::Feet), ("slippers", Slot::Feet), ("clogs", Slot::Feet),
    ("plimsolls", Slot::Feet), ("loafers", Slot::Feet), ("heels", Slot::Feet),
    ("hat", Slot::Hat), ("cap", Slot::Hat), ("beanie", Slot::Hat), ("bonnet", Slot::Hat),
    ("beret", Slot::Hat), ("fedora", Slot::Hat), ("bowler", Slot::Hat), ("helmet", Slot::Hat),
    ("headscarf", Slot::Hat), ("hood", Slot::Hat), ("crown", Slot::Hat), ("turban", Slot::Hat),
    ("trilby", Slot::Hat), ("stetson", Slot::Hat), ("sombrero", Slot::Hat), ("tam", Slot::Hat),
];

/// Hair colours as people write them, with the colour drawn.
#[rustfmt::skip]
const HAIR_COLORS: &[(&str, &str)] = &[
    ("ginger", "#b5522b"), ("auburn", "#8a3b22"), ("copper", "#b0602e"), ("red", "#a8432a"),
    ("strawberry", "#c98a5a"), ("blonde", "#e2c57a"), ("blond", "#e2c57a"), ("fair", "#dcc48e"),
    ("golden", "#d9b45a"), ("flaxen", "#e6d29a"), ("sandy", "#c8a86e"), ("brown", "#5a3a22"),
    ("chestnut", "#6b3b1f"), ("brunette", "#4a2f1c"), ("mousy", "#8a7558"), ("mousey", "#8a7558"),
    ("dark", "#241c17"), ("black", "#16120f"), ("raven", "#121016"), ("jet", "#0f0e10"),
    ("grey", "#a6a6a6"), ("gray", "#a6a6a6"), ("silver", "#c9cbd0"), ("white", "#ececec"),
    ("snowy", "#f0f0f0"), ("pink", "#e58fb0"), ("blue", "#3d6fd0"), ("green", "#3f9f5a"),
    ("purple", "#7a4fa8"),
];

/// Words that are hair in a text: "red hair", "red-haired", "blonde curls".
const HAIR_NOUNS: &[&str] = &[
    "hair",
    "haired",
    "curls",
    "plaits",
    "braids",
    "pigtails",
    "ponytail",
    "bob",
    "locks",
    "mane",
    "fringe",
    "bun",
    "mohawk",
    "dreadlocks",
    "afro",
];

/// Words that stand for a hair colour alone ("a redhead", "she is blonde").
const HAIR_ALONE: &[(&str, &str)] = &[
    ("redhead", "ginger"),
    ("blonde", "blonde"),
    ("blond", "blond"),
    ("brunette", "brunette"),
    ("ginger", "ginger"),
];

const GLASSES: &[&str] = &[
    "glasses",
    "spectacles",
    "specs",
    "bespectacled",
    "eyeglasses",
    "monocle",
    "sunglasses",
];

const TALL: &[&str] = &["tall", "lanky", "towering", "gangly", "lofty", "giant"];
const SHORT: &[&str] = &[
    "short",
    "small",
    "tiny",
    "petite",
    "little",
    "diminutive",
    "stocky",
];
const CHILD: &[&str] = &["child", "kid", "toddler", "baby", "infant", "youngster"];
const OLD: &[&str] = &["elderly", "ageing", "aging", "wrinkled", "wizened"];
/// "old" is about the person only before one of these ("an old man", not "an old friend").
const OLD_PEOPLE: &[&str] = &[
    "man",
    "woman",
    "lady",
    "gentleman",
    "men",
    "women",
    "fisherman",
    "sailor",
    "widow",
    "widower",
];
const NEGATIONS: &[&str] = &["no", "without", "never", "not", "lost", "loses", "removes"];

#[rustfmt::skip]
const NUMBER_WORDS: &[(&str, u32)] = &[
    ("one", 1), ("two", 2), ("three", 3), ("four", 4), ("five", 5), ("six", 6), ("seven", 7),
    ("eight", 8), ("nine", 9), ("ten", 10), ("eleven", 11), ("twelve", 12), ("thirteen", 13),
    ("fourteen", 14), ("fifteen", 15), ("sixteen", 16), ("seventeen", 17), ("eighteen", 18),
    ("nineteen", 19), ("twenty", 20), ("thirty", 30), ("forty", 40), ("fifty", 50),
    ("sixty", 60), ("seventy", 70), ("eighty", 80), ("ninety", 90),
];

fn number(w: &str) -> Option<u32> {
    if let Ok(n) = w.parse::<u32>() {
        return Some(n);
    }
    NUMBER_WORDS.iter().find(|(k, _)| *k == w).map(|(_, n)| *n)
}

/// "twenty two" or "twenty-two" (split by [`words`]) read from `ws[i..]`: the number and the
/// words it took.
fn number_at(ws: &[String], i: usize) -> Option<(u32, usize)> {
    let n = number(&ws[i])?;
    if (20..100).contains(&n)
        && n % 10 == 0
        && let Some(m) = ws.get(i + 1).and_then(|w| number(w))
        && m < 10
    {
        return Some((n + m, 2));
    }
    Some((n, 1))
}

fn garment(w: &str) -> Option<Slot> {
    GARMENTS.iter().find(|(g, _)| *g == w).map(|(_, s)| *s)
}

fn colour(w: &str) -> Option<&'static str> {
    COLOR_NAMES
        .iter()
        .find(|(n, _)| !n.contains(' ') && *n == w)
        .map(|(_, h)| *h)
}

fn hair_colour(w: &str) -> Option<&'static str> {
    HAIR_COLORS.iter().find(|(n, _)| *n == w).map(|(_, h)| *h)
}

/// The clauses of a text: pieces between commas, semicolons, brackets, full stops and "and".
/// Colours never reach across them ("a red scarf, boots" does not make red boots).
fn clauses(text: &str) -> Vec<Vec<String>> {
    text.split([',', ';', '.', '(', ')', '!', '?', ':', '\n'])
        .flat_map(|p| {
            let ws = words(p);
            let mut out = vec![];
            let mut cur = vec![];
            for w in ws {
                // "green wellies and a red coat": a colour binds within its own half.
                if w == "and" || w == "with" || w == "but" {
                    out.push(std::mem::take(&mut cur));
                } else {
                    cur.push(w);
                }
            }
            out.push(cur);
            out
        })
        .filter(|c| !c.is_empty())
        .collect()
}

fn negated(ws: &[String], at: usize) -> bool {
    ws[at.saturating_sub(3)..at]
        .iter()
        .any(|w| NEGATIONS.contains(&w.as_str()))
}

/// Whether the word at `at` describes a garment or hair that follows it ("short red hair").
fn of_a_thing(clause: &[String], at: usize) -> bool {
    clause[at + 1..]
        .iter()
        .take(2)
        .any(|n| garment(n).is_some() || HAIR_NOUNS.contains(&n.as_str()) || colour(n).is_some())
}

/// Height a person of `age` stands at against an adult.
fn height_for_age(age: u32) -> f32 {
    match age {
        0..=3 => 0.5,
        4..=6 => 0.62,
        7..=9 => 0.72,
        10..=12 => 0.82,
        13..=15 => 0.92,
        _ => 1.0,
    }
}

/// An age in a clause: "9" or "nine" standing alone, "aged 9", "age nine", "9 years old",
/// "nine-year-old", "in her sixties" is left alone (not a number of years).
fn age_in(clause: &[String]) -> Option<u32> {
    let plausible = |n: u32| (1..=120).contains(&n);
    if let Some((n, used)) = number_at(clause, 0)
        && used == clause.len()
        && plausible(n)
    {
        return Some(n);
    }
    for i in 0..clause.len() {
        if let Some((n, used)) = number_at(clause, i) {
            let next = clause.get(i + used).map(String::as_str);
            let before = i.checked_sub(1).map(|j| clause[j].as_str());
            if plausible(n)
                && (matches!(
                    next,
                    Some("year") | Some("years") | Some("yr") | Some("yrs")
                ) || matches!(before, Some("aged") | Some("age")))
            {
                return Some(n);
            }
        }
    }
    None
}

/// The looks a text describes. Later facts win over earlier ones ("a red coat; later a blue
/// coat" draws blue), as the reader's rule for contradictions says.
pub fn looks_of(text: &str) -> Looks {
    let mut l = Looks::default();
    let mut tall: Option<f32> = None;
    let mut old = false;
    let mut child = false;
    for clause in clauses(text) {
        if let Some(a) = age_in(&clause) {
            l.age = Some(a);
        }
        for (i, w) in clause.iter().enumerate() {
            let w = w.as_str();
            if let Some(slot) = garment(w) {
                // "hood" as a hat only when worn up; "bob" is hair. Both are rare enough to
                // take at their word.
                let c = clause[i.saturating_sub(3)..i]
                    .iter()
                    .rev()
                    .find_map(|x| colour(x));
                if let Some(c) = c.filter(|_| !negated(&clause, i)) {
                    let field = match slot {
                        Slot::Top => &mut l.top,
                        Slot::Legs => &mut l.legs,
                        Slot::Feet => &mut l.feet,
                        Slot::Hat => &mut l.hat,
                    };
                    *field = Some(c.to_string());
                } else if slot == Slot::Hat && !negated(&clause, i) && l.hat.is_none() {
                    // A hat of no stated colour is still a hat.
                    l.hat = Some("#3a3430".into());
                }
            }
            if HAIR_NOUNS.contains(&w) {
                if let Some(c) = clause[i.saturating_sub(3)..i]
                    .iter()
                    .rev()
                    .find_map(|x| hair_colour(x))
                {
                    l.hair = Some(c.to_string());
                }
            } else if let Some((_, as_colour)) = HAIR_ALONE.iter().find(|(k, _)| *k == w)
                && !clause
                    .get(i + 1)
                    .is_some_and(|n| garment(n).is_some() || HAIR_NOUNS.contains(&n.as_str()))
            {
                l.hair = hair_colour(as_colour).map(str::to_string);
            }
            if w == "bald" {
                l.hair = None;
            }
            if GLASSES.contains(&w) {
                l.glasses = !negated(&clause, i);
            }
            if TALL.contains(&w) && !of_a_thing(&clause, i) {
                tall = Some(if i > 0 && clause[i - 1] == "very" {
                    1.2
                } else {
                    1.12
                });
            } else if SHORT.contains(&w) && !of_a_thing(&clause, i) {
                // "short" of a garment or of hair ("short skirt", "short red hair") is not the
                // person.
                tall = Some(if i > 0 && clause[i - 1] == "very" {
                    0.82
                } else {
                    0.9
                });
            }
            if CHILD.contains(&w) {
                child = true;
            }
            if OLD.contains(&w)
                || (w == "old"
                    && clause
                        .get(i + 1)
                        .is_some_and(|n| OLD_PEOPLE.contains(&n.as_str())))
            {
                old = true;
            }
        }
    }
    let by_age = l.age.map(height_for_age).or(child.then_some(0.75));
    l.height = match (by_age, tall) {
        (Some(a), Some(t)) => Some(a * t),
        (a, t) => a.or(t),
    };
    if old && l.hair.is_none() && l.age.is_none_or(|a| a >= 60) {
        l.hair = hair_colour("grey").map(str::to_string);
    }
    l
}

/// The phrases of `text` that say something drawable about a person (for an appearance field),
/// each as written: "9", "green wellies", "round glasses", "tall".
pub fn look_phrases(text: &str) -> Vec<String> {
    let mut out: Vec<String> = vec![];
    for part in text.split([',', ';', '.', '(', ')', '!', '?', ':', '\n']) {
        for piece in split_and(part) {
            let p = piece.trim();
            if p.is_empty() {
                continue;
            }
            let found = looks_of(p);
            if found.is_empty() && !has_look_word(p) {
                continue;
            }
            let ws = words(p);
            // Keep a short phrase whole; from a longer one keep the words around the look.
            let phrase = if ws.len() <= 6 {
                p.trim_start_matches(|c: char| !c.is_alphanumeric())
                    .to_string()
            } else {
                core_of(&ws)
            };
            if !phrase.is_empty() && !out.contains(&phrase) {
                out.push(phrase);
            }
        }
    }
    out
}

fn split_and(part: &str) -> Vec<&str> {
    let mut out = vec![];
    let mut rest = part;
    while let Some(at) = [" and ", " with ", " but ", " who ", " while "]
        .iter()
        .filter_map(|s| rest.find(s).map(|i| (i, s.len())))
        .min()
    {
        out.push(&rest[..at.0]);
        rest = &rest[at.0 + at.1..];
    }
    out.push(rest);
    out
}

fn has_look_word(p: &str) -> bool {
    words(p).iter().any(|w| {
        GLASSES.contains(&w.as_str())
            || TALL.contains(&w.as_str())
            || w == "freckles"
            || w == "freckled"
            || w == "beard"
            || w == "bearded"
            || w == "moustache"
            || w == "bald"
            || w == "scar"
    })
}

/// From a long clause, the few words that carry the look: a garment or hair noun with the two
/// words before it, glasses, a height word.
fn core_of(ws: &[String]) -> String {
    let mut out: Vec<String> = vec![];
    for (i, w) in ws.iter().enumerate() {
        let key = garment(w).is_some()
            || HAIR_NOUNS.contains(&w.as_str())
            || GLASSES.contains(&w.as_str());
        if key {
            let from = i.saturating_sub(2);
            let lead: Vec<&String> = ws[from..i]
                .iter()
                .filter(|x| {
                    !matches!(
                        x.as_str(),
                        "a" | "an" | "the" | "in" | "her" | "his" | "their" | "wears" | "wearing"
                    )
                })
                .collect();
            let mut s: Vec<String> = lead.into_iter().cloned().collect();
            s.push(w.clone());
            out.push(s.join(" "));
        } else if TALL.contains(&w.as_str()) || w == "freckled" || w == "freckles" || w == "bald" {
            out.push(w.clone());
        }
    }
    out.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn brackets_and_fields() {
        let l = looks_of("9, green wellies");
        assert_eq!(l.age, Some(9));
        assert_eq!(l.feet.as_deref(), Some("#3f8f4a"));
        assert_eq!(l.height, Some(0.72));
        assert!(l.top.is_none());
        let l = looks_of("tall, in a long yellow wool raincoat, round glasses, red hair");
        assert_eq!(l.top.as_deref(), Some("#e8cf3a"));
        assert_eq!(l.hair.as_deref(), Some("#a8432a"));
        assert!(l.glasses);
        assert_eq!(l.height, Some(1.12));
    }

    #[test]
    fn ages_in_prose_and_negations() {
        assert_eq!(looks_of("a nine-year-old in a blue coat").age, Some(9));
        assert_eq!(looks_of("aged 72, white-haired").age, Some(72));
        assert_eq!(looks_of("twenty-two years old").age, Some(22));
        assert_eq!(looks_of("she has 3 brothers").age, None);
        assert!(!looks_of("no glasses, black boots").glasses);
        assert_eq!(
            looks_of("a red scarf, boots").feet,
            None,
            "a colour does not reach across a comma"
        );
        assert_eq!(looks_of("short red hair").height, None);
        let l = looks_of("a short skirt, grey trousers");
        assert_eq!(l.height, None, "a short skirt is no short person");
        assert_eq!(l.legs.as_deref(), Some("#7d8288"));
        assert_eq!(looks_of("a redhead").hair.as_deref(), Some("#b5522b"));
        assert_eq!(looks_of("an elderly man").hair.as_deref(), Some("#a6a6a6"));
        assert_eq!(looks_of("an old friend").hair, None);
        assert_eq!(looks_of("nine years old").hair, None);
    }

    #[test]
    fn phrases_of_a_premise_sentence() {
        let p = look_phrases(" twelve and freckled, in a yellow raincoat that is far too big");
        assert!(p.contains(&"twelve".to_string()), "{p:?}");
        assert!(p.iter().any(|x| x.contains("yellow raincoat")), "{p:?}");
        assert!(p.contains(&"freckled".to_string()), "{p:?}");
        assert!(look_phrases(" who hates the dark").is_empty());
    }
}
