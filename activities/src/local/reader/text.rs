//! Words, sentences, quotes, colours and the small vocabularies the reader recognises.
//!
//! The vocabularies are deliberately plain English word lists: the local studio stands in for a
//! language model, and a list a person can read (and extend) beats a clever parser nobody can
//! predict. Matching is on whole words, lower case.

pub use super::lexicon::{
    COLOR_NAMES, PLACE_NOUNS, RULE_WORDS, SPEECH_VERBS, STYLE_WORDS, TIMES, WEATHERS,
};

/// Lower-case words of a text (letters, digits and apostrophes inside words).
pub fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !(c.is_alphanumeric() || c == '\''))
        .map(|w| w.trim_matches('\''))
        .filter(|w| !w.is_empty())
        .map(|w| w.to_lowercase())
        .collect()
}

/// Whether any word of `text` is in `set` (each entry one word, or several words in a row).
pub fn has_any(text: &str, set: &[&str]) -> bool {
    first_of(text, set).is_some()
}

/// The first entry of `set` found in `text`, in the order of `set`.
pub fn first_of<'a>(text: &str, set: &[&'a str]) -> Option<&'a str> {
    let ws = words(text);
    set.iter().copied().find(|entry| {
        let e: Vec<&str> = entry.split(' ').collect();
        ws.windows(e.len())
            .any(|w| w.iter().zip(&e).all(|(a, b)| a == b))
    })
}

/// A key or a name reduced for comparison: lower case, letters and digits only.
pub fn norm(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect()
}

/// A place or thing name reduced for comparison: leading articles dropped, then [`norm`].
pub fn norm_name(s: &str) -> String {
    let t = s.trim();
    let lower = t.to_lowercase();
    let t = ["the ", "a ", "an "]
        .iter()
        .find_map(|a| lower.strip_prefix(a).map(|_| &t[a.len()..]))
        .unwrap_or(t);
    norm(t)
}

/// Whether `text` mentions `name` as whole words (case-insensitive).
pub fn mentions(text: &str, name: &str) -> bool {
    let n = words(name);
    if n.is_empty() {
        return false;
    }
    let t = words(text);
    t.windows(n.len()).any(|w| {
        w.iter().zip(&n).enumerate().all(|(i, (a, b))| {
            // "Maren's" mentions Maren.
            a == b || (i + 1 == n.len() && a.strip_suffix("'s") == Some(b.as_str()))
        })
    })
}

/// Whether `text` mentions the object `name`: the whole name, or its head noun (the last word,
/// "key" of "The Brass Key"), singular or plural ("lanterns", "boxes", "berries").
pub fn mentions_object(text: &str, name: &str) -> bool {
    if mentions(text, name) {
        return true;
    }
    let Some(head) = words(name).into_iter().last().filter(|h| h.len() >= 3) else {
        return false;
    };
    let plurals = [
        format!("{head}s"),
        format!("{head}es"),
        head.strip_suffix('y')
            .map(|s| format!("{s}ies"))
            .unwrap_or_default(),
    ];
    words(text)
        .iter()
        .any(|w| *w == head || plurals.iter().any(|p| !p.is_empty() && w == p))
}

/// Up to `n` characters of `s`, cut at a word boundary, with `…` when cut.
pub fn clip(s: &str, n: usize) -> String {
    let s = s.trim();
    if s.chars().count() <= n {
        return s.to_string();
    }
    let cut: String = s.chars().take(n).collect();
    let cut = cut.rsplit_once(' ').map(|(a, _)| a).unwrap_or(&cut);
    format!("{}…", cut.trim_end_matches([',', ';', ':', ' ']))
}

/// Title Case of a phrase ("the old mill" -> "Old Mill" when `drop_article`).
pub fn title_case(s: &str, drop_article: bool) -> String {
    let mut out = vec![];
    for (i, w) in s.split_whitespace().enumerate() {
        let lw = w.to_lowercase();
        if i == 0 && drop_article && ["the", "a", "an"].contains(&lw.as_str()) {
            continue;
        }
        let mut c = w.chars();
        out.push(match c.next() {
            Some(f) => f.to_uppercase().collect::<String>() + c.as_str(),
            None => String::new(),
        });
    }
    out.join(" ")
}

/// Whether a string reads as prose (a sentence) rather than a label or a name.
pub fn is_prose(s: &str) -> bool {
    let n = words(s).len();
    n >= 5 || (n >= 2 && s.trim_end().ends_with(['.', '!', '?', '"', '\u{201d}']))
}

/// Whether a string looks like a proper name: 1-4 words, each capitalised (small joining words
/// allowed inside), no sentence punctuation.
pub fn looks_like_name(s: &str) -> bool {
    let s = s.trim();
    if s.is_empty() || s.len() > 60 || s.contains(['.', '!', '?', ':', ';', '"']) {
        return false;
    }
    let ws: Vec<&str> = s.split_whitespace().collect();
    if ws.is_empty() || ws.len() > 4 {
        return false;
    }
    ws.iter().enumerate().all(|(i, w)| {
        w.chars().next().is_some_and(char::is_uppercase)
            || (i > 0 && ["of", "the", "de", "van", "von", "la", "le"].contains(w))
    })
}

/// Split text into sentences, never inside quotes or brackets ("Ada (9, green wellies. Always
/// muddy.) waits." is one). Abbreviations such as "Mr." do not end one.
pub fn sentences(text: &str) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = vec![];
    let mut cur = String::new();
    let mut in_quote = false;
    let mut depth = 0usize;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        cur.push(c);
        match c {
            '"' => in_quote = !in_quote,
            '\u{201c}' => in_quote = true,
            '\u{201d}' => in_quote = false,
            '(' | '[' => depth += 1,
            ')' | ']' => depth = depth.saturating_sub(1),
            '\n' if !in_quote && depth == 0 => {
                push_sentence(&mut out, &mut cur);
            }
            '.' | '!' | '?' if !in_quote && depth > 0 => {}
            '.' | '!' | '?' if !in_quote => {
                // Swallow closing punctuation, then end the sentence at a space or the end.
                while i + 1 < chars.len() && matches!(chars[i + 1], '.' | '!' | '?' | ')') {
                    i += 1;
                    cur.push(chars[i]);
                }
                let at_end = i + 1 >= chars.len();
                let next_space = !at_end && chars[i + 1].is_whitespace();
                let last_word = cur
                    .trim_end_matches(['.', '!', '?', ')'])
                    .rsplit(|c: char| c.is_whitespace())
                    .next()
                    .unwrap_or("")
                    .to_lowercase();
                let abbreviation = c == '.'
                    && [
                        "mr", "mrs", "ms", "dr", "st", "prof", "capt", "sgt", "mt", "no", "vs",
                    ]
                    .contains(&last_word.as_str());
                if (at_end || next_space) && !abbreviation {
                    push_sentence(&mut out, &mut cur);
                }
            }
            _ => {}
        }
        i += 1;
    }
    push_sentence(&mut out, &mut cur);
    out
}

fn push_sentence(out: &mut Vec<String>, cur: &mut String) {
    let s = cur.trim().trim_start_matches(['-', '*', '•', ' ']).trim();
    if !s.is_empty() && s.chars().any(char::is_alphanumeric) {
        out.push(s.to_string());
    }
    cur.clear();
}

/// Words a scene can hold: a sentence longer than this is cut into parts (about three words a
/// second of screen time, so 16 words make the 7-second limit).
pub const MAX_UNIT_WORDS: usize = 16;

/// Cut a long sentence at its clause boundaries into parts of at most [`MAX_UNIT_WORDS`] words
/// (hard cuts only where a clause is longer than that on its own).
pub fn split_long(sentence: &str) -> Vec<String> {
    if words(sentence).len() <= MAX_UNIT_WORDS {
        return vec![sentence.trim().to_string()];
    }
    // Clauses: split after , ; : — and before "and then", "then", "while", "but".
    let mut clauses: Vec<String> = vec![];
    let mut cur = String::new();
    for tok in sentence.split_whitespace() {
        let lw = tok.to_lowercase();
        if !cur.is_empty() && ["then", "while", "but", "until", "when", "as"].contains(&lw.as_str())
        {
            clauses.push(std::mem::take(&mut cur));
        }
        if !cur.is_empty() {
            cur.push(' ');
        }
        cur.push_str(tok);
        if tok.ends_with([',', ';', ':']) || tok == "—" || tok == "-" {
            clauses.push(std::mem::take(&mut cur));
        }
    }
    if !cur.is_empty() {
        clauses.push(cur);
    }
    // Greedily pack clauses into parts; a clause too long alone is cut every 14 words.
    let mut parts: Vec<String> = vec![];
    let mut part = String::new();
    for clause in clauses {
        let cw = words(&clause).len();
        if cw > MAX_UNIT_WORDS {
            if !part.is_empty() {
                parts.push(std::mem::take(&mut part));
            }
            let toks: Vec<&str> = clause.split_whitespace().collect();
            for chunk in toks.chunks(14) {
                parts.push(chunk.join(" "));
            }
            continue;
        }
        if words(&part).len() + cw > MAX_UNIT_WORDS && !part.is_empty() {
            parts.push(std::mem::take(&mut part));
        }
        if !part.is_empty() {
            part.push(' ');
        }
        part.push_str(&clause);
    }
    if !part.is_empty() {
        parts.push(part);
    }
    parts
        .into_iter()
        .map(|p| {
            p.trim()
                .trim_end_matches([',', ';', ':', '—', '-'])
                .trim()
                .to_string()
        })
        .filter(|p| !words(p).is_empty())
        .collect()
}

/// A quotation found in a sentence, with who says it when the sentence names them.
#[derive(Debug, Clone, PartialEq)]
pub struct Quote {
    /// The words spoken.
    pub line: String,
    /// The name written next to it (`Maren: "..."`, `"...," says Maren`), as written.
    pub speaker: Option<String>,
}

/// Quotations of a sentence and the sentence with them taken out.
pub fn quotes(sentence: &str) -> (Vec<Quote>, String) {
    // Spans of quoted text, as byte ranges of the quotation marks' insides.
    let mut spans: Vec<(usize, usize, usize, usize)> = vec![]; // (open, inner start, inner end, after close)
    let mut open: Option<(usize, usize)> = None;
    for (i, c) in sentence.char_indices() {
        let w = c.len_utf8();
        match (open, c) {
            (None, '"' | '\u{201c}') => open = Some((i, i + w)),
            (Some((o, s)), '"' | '\u{201d}') => {
                spans.push((o, s, i, i + w));
                open = None;
            }
            _ => {}
        }
    }
    if let Some((o, s)) = open {
        // An unclosed quotation runs to the end of the sentence.
        spans.push((o, s, sentence.len(), sentence.len()));
    }
    let mut found = vec![];
    let mut rest = String::new();
    let mut prev_end = 0;
    for (k, &(o, s, e, after)) in spans.iter().enumerate() {
        let before = &sentence[prev_end..o];
        let next_open = spans.get(k + 1).map_or(sentence.len(), |n| n.0);
        let following = &sentence[after..next_open];
        rest.push_str(before);
        rest.push(' ');
        let line = sentence[s..e]
            .trim()
            .trim_end_matches(',')
            .trim()
            .to_string();
        if !line.is_empty() {
            found.push(Quote {
                speaker: speaker_before(before).or_else(|| speaker_after(following)),
                line,
            });
        }
        prev_end = after;
    }
    rest.push_str(&sentence[prev_end..]);
    let rest = rest.split_whitespace().collect::<Vec<_>>().join(" ");
    (found, rest)
}

/// `Maren: "` or `Maren whispers, "` or `Maren says "` right before a quotation.
fn speaker_before(before: &str) -> Option<String> {
    let b = before
        .trim_end()
        .trim_end_matches([',', ':', '-', '—'])
        .trim_end();
    if before.trim_end().ends_with(':') {
        let seg = b
            .rsplit(['.', '!', '?', ';', ','])
            .next()
            .unwrap_or(b)
            .trim();
        if looks_like_name(seg) {
            return Some(seg.to_string());
        }
    }
    let toks: Vec<&str> = b.split_whitespace().collect();
    if let Some((verb, head)) = toks.split_last()
        && SPEECH_VERBS.contains(&verb.to_lowercase().as_str())
    {
        let name = name_at_end(head);
        if name.is_some() {
            return name;
        }
    }
    None
}

/// `," says Maren` or `," Maren says` right after a quotation.
fn speaker_after(after: &str) -> Option<String> {
    let clean: Vec<String> = after
        .split_whitespace()
        .take(5)
        .map(|t| {
            t.trim_matches(|c: char| !c.is_alphanumeric() && c != '\'')
                .to_string()
        })
        .filter(|t| !t.is_empty())
        .collect();
    let capital = |w: &&String| w.chars().next().is_some_and(char::is_uppercase);
    let is_verb = |w: &String| SPEECH_VERBS.contains(&w.to_lowercase().as_str());
    let first = clean.first()?;
    let name: Vec<&str> = if is_verb(first) {
        // says Maren / says Old Tom
        clean[1..]
            .iter()
            .take_while(capital)
            .map(String::as_str)
            .collect()
    } else {
        // Maren says
        let n: Vec<&str> = clean
            .iter()
            .take_while(capital)
            .map(String::as_str)
            .collect();
        if clean.get(n.len()).is_some_and(is_verb) {
            n
        } else {
            vec![]
        }
    };
    let name = name.join(" ");
    (!name.is_empty() && looks_like_name(&name)).then_some(name)
}

fn name_at_end(toks: &[&str]) -> Option<String> {
    let mut name: Vec<&str> = vec![];
    for t in toks.iter().rev() {
        let w = t.trim_matches(|c: char| !c.is_alphanumeric() && c != '\'');
        if w.chars().next().is_some_and(char::is_uppercase) && name.len() < 3 {
            name.insert(0, w);
        } else {
            break;
        }
    }
    let n = name.join(" ");
    (!n.is_empty() && looks_like_name(&n)).then_some(n)
}

/// `#rgb` and `#rrggbb` codes in a text, as `#rrggbb`.
pub fn hex_codes(text: &str) -> Vec<String> {
    let mut out = vec![];
    let b = text.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'#' {
            let mut j = i + 1;
            while j < b.len() && b[j].is_ascii_hexdigit() {
                j += 1;
            }
            let h = &text[i + 1..j];
            let boundary = j >= b.len() || !b[j].is_ascii_alphanumeric();
            if boundary && (h.len() == 6 || h.len() == 3) {
                let full = if h.len() == 3 {
                    h.chars().flat_map(|c| [c, c]).collect::<String>()
                } else {
                    h.to_string()
                };
                out.push(format!("#{}", full.to_lowercase()));
            }
            i = j;
        } else {
            i += 1;
        }
    }
    out
}

/// Colours named in a text (hex codes first, then colour words), without repeats.
pub fn colors_in(text: &str) -> Vec<String> {
    let mut out = hex_codes(text);
    let lower = text.to_lowercase();
    let ws = words(&lower);
    for (name, hex) in COLOR_NAMES {
        let parts: Vec<&str> = name.split(' ').collect();
        if ws
            .windows(parts.len())
            .any(|w| w.iter().zip(&parts).all(|(a, b)| a == b))
            && !out.contains(&hex.to_string())
        {
            out.push(hex.to_string());
        }
    }
    out
}

/// The time of day a text names, if any.
pub fn time_in(text: &str) -> Option<&'static str> {
    earliest(text, TIMES)
}

/// The value of the entry of `table` mentioned first in `text`.
fn earliest(text: &str, table: &[(&str, &'static str)]) -> Option<&'static str> {
    let ws = words(text);
    table
        .iter()
        .filter_map(|(k, v)| {
            let parts: Vec<&str> = k.split(' ').collect();
            ws.windows(parts.len())
                .position(|w| w.iter().zip(&parts).all(|(a, b)| a == b))
                .map(|at| (at, *v))
        })
        .min_by_key(|(at, _)| *at)
        .map(|(_, v)| v)
}

/// The weather a text names, if any.
pub fn weather_in(text: &str) -> Option<&'static str> {
    earliest(text, WEATHERS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sentences_do_not_split_inside_brackets() {
        let s = sentences("Ada (9, green wellies. Always muddy.) waits. Tom (12) runs.");
        assert_eq!(
            s,
            vec![
                "Ada (9, green wellies. Always muddy.) waits.",
                "Tom (12) runs."
            ]
        );
    }

    #[test]
    fn sentences_do_not_split_inside_quotes_or_after_titles() {
        let s = sentences(r#"Mr. Oren waits. Maren says, "Go. Now!" Then she runs"#);
        assert_eq!(
            s,
            vec!["Mr. Oren waits.", r#"Maren says, "Go. Now!" Then she runs"#]
        );
    }

    #[test]
    fn quotes_find_their_speakers() {
        let (q, rest) = quotes(r#"Maren: "Keep it lit.""#);
        assert_eq!(q[0].speaker.as_deref(), Some("Maren"));
        assert_eq!(q[0].line, "Keep it lit.");
        assert!(words(&rest).iter().all(|w| w == "maren"));
        let (q, _) = quotes(r#""Keep it lit," says Old Tom."#);
        assert_eq!(q[0].speaker.as_deref(), Some("Old Tom"));
        let (q, _) = quotes(r#""Keep it lit," Maren whispers."#);
        assert_eq!(q[0].speaker.as_deref(), Some("Maren"));
        let (q, rest) = quotes(r#"The storm hits and Maren shouts "Hold on!" to the sea."#);
        assert_eq!(q[0].speaker.as_deref(), Some("Maren"));
        assert!(rest.contains("storm hits"));
        let (q, _) = quotes(r#"A voice in the dark: "Who's there?""#);
        assert_eq!(q[0].speaker, None, "lower case is not a name");
    }

    #[test]
    fn long_sentences_split_at_clauses_within_the_limit() {
        let s = "Maren climbs the spiral stair with the lamp in her hand, the wind howling through every broken pane, while Oren waits at the top in the dark and says nothing at all";
        let parts = split_long(s);
        assert!(parts.len() >= 2, "{parts:?}");
        assert!(
            parts.iter().all(|p| words(p).len() <= MAX_UNIT_WORDS),
            "{parts:?}"
        );
        assert_eq!(
            parts.iter().map(|p| words(p).len()).sum::<usize>(),
            words(s).len(),
            "nothing lost"
        );
    }

    #[test]
    fn colours_times_weather_names() {
        assert_eq!(
            colors_in("deep navy and #FA0 with amber"),
            vec!["#ffaa00", "#1f2a44", "#e0a030"]
        );
        assert_eq!(time_in("late at night, after dusk"), Some("night"));
        assert_eq!(time_in("at midnight"), Some("night"));
        assert_eq!(weather_in("a storm night with rain"), Some("stormy"));
        assert!(looks_like_name("Old Tom"));
        assert!(!looks_like_name("the keeper"));
        assert!(mentions("Maren's lamp", "maren"));
        assert!(!mentions("Marenka", "Maren"));
        assert_eq!(norm_name("The Old Mill"), "oldmill");
        assert_eq!(title_case("the old mill", true), "Old Mill");
    }
}
