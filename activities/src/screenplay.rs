//! Screenplays out: the qualified screenplay written as Fountain, and as a PDF in the standard
//! layout (Courier 12 pt, scene headings, character cues and dialogue indented) by `rustwell`'s
//! exporter (decision 0023). What is written reads back with the same parser to the same scene
//! headings and dialogue.

use std::collections::BTreeMap;

use crate::model::{DialogueLine, Screenplay};

fn upper_has_letters(s: &str) -> bool {
    let letters: Vec<char> = s.chars().filter(|c| c.is_alphabetic()).collect();
    !letters.is_empty() && letters.iter().all(|c| c.is_uppercase())
}

fn line_of(out: &mut String, names: &BTreeMap<String, String>, d: &DialogueLine) {
    let name = names
        .get(&d.character)
        .cloned()
        .unwrap_or_else(|| d.character.clone())
        .to_uppercase();
    // A cue is a line in capitals; `@` forces one whose name has none (a name in another script).
    let cue = if upper_has_letters(&name) {
        name
    } else {
        format!("@{name}")
    };
    out.push_str(&format!("{cue}\n"));
    if let Some(how) = d.parenthetical.as_deref().filter(|h| !h.trim().is_empty()) {
        out.push_str(&format!("({})\n", how.trim()));
    }
    out.push_str(d.line.trim());
    out.push_str("\n\n");
}

fn transition_text(t: &str) -> Option<&'static str> {
    match t {
        "dissolve" => Some("DISSOLVE TO:"),
        "wipe" => Some("WIPE TO:"),
        "fade_out" => Some("FADE OUT."),
        _ => None,
    }
}

/// The screenplay as Fountain: a title page, then each sequence's heading, its action and its
/// lines where the screenplay put them, and its transitions. `names` maps character ids to the
/// names their cues show; `credits` are title-page lines ("Author: …").
pub fn fountain(
    sp: &Screenplay,
    names: &BTreeMap<String, String>,
    credits: &[(String, String)],
) -> String {
    let mut out = String::new();
    out.push_str(&format!("Title: {}\n", sp.title.trim()));
    for (k, v) in credits {
        out.push_str(&format!("{k}: {}\n", v.trim()));
    }
    out.push('\n');
    for (i, seq) in sp.sequences.iter().enumerate() {
        if i == 0 {
            out.push_str("FADE IN:\n\n");
        }
        let heading = seq.heading.trim().to_uppercase();
        // A heading Fountain would not know as one (no INT./EXT.) is forced with a dot.
        let known = crate::local::reader::looks_like_screenplay(&format!("{heading}\n\nx"));
        if known {
            out.push_str(&format!("{heading}\n\n"));
        } else {
            out.push_str(&format!(".{heading}\n\n"));
        }
        let positions: Vec<usize> = if seq.line_positions.len() == seq.dialogue.len() {
            seq.line_positions.clone()
        } else {
            vec![seq.action.len().min(1); seq.dialogue.len()]
        };
        let mut lines = seq.dialogue.iter().zip(&positions).peekable();
        for (ai, a) in seq.action.iter().enumerate() {
            while let Some((d, _)) = lines.next_if(|(_, p)| **p <= ai) {
                line_of(&mut out, names, d);
            }
            let a = a.trim();
            // Action in capitals would read as a cue: `!` forces it to be action.
            if upper_has_letters(a) {
                out.push('!');
            }
            out.push_str(a);
            out.push_str("\n\n");
        }
        for (d, _) in lines {
            line_of(&mut out, names, d);
        }
        let last = i + 1 == sp.sequences.len();
        match seq.transition_out.as_deref().and_then(transition_text) {
            Some(t) if !last || t == "FADE OUT." => out.push_str(&format!("{t}\n\n")),
            _ if last => out.push_str("FADE OUT.\n"),
            _ => {}
        }
    }
    out
}

/// A Fountain screenplay as a PDF in the standard layout (US letter).
pub fn pdf(fountain: &str) -> std::io::Result<Vec<u8>> {
    use rustwell::Exporter;
    let parsed = rustwell::parse(fountain);
    let exporter = rustwell::PdfExporter {
        synopses: false,
        paper_size: rustwell::LETTER,
    };
    let mut out = vec![];
    exporter.export(&parsed, &mut out)?;
    Ok(out)
}

/// The scene headings and lines (cue as written, words) a Fountain text reads back to, with
/// the same parser the reader uses.
pub fn read_back(fountain: &str) -> (Vec<String>, Vec<(String, String)>) {
    use rustwell::screenplay::{DialogueElement, Element};
    let sp = rustwell::parse(fountain);
    let mut headings = vec![];
    let mut lines = vec![];
    let said = |d: &rustwell::screenplay::Dialogue, lines: &mut Vec<(String, String)>| {
        let cue = d.character.to_plain_string().trim().to_string();
        for e in &d.elements {
            if let DialogueElement::Line(l) = e {
                lines.push((cue.clone(), l.to_plain_string().trim().to_string()));
            }
        }
    };
    for e in &sp.elements {
        match &e.inner {
            Element::Heading { slug, .. } => {
                headings.push(slug.to_plain_string().trim().to_string())
            }
            Element::Dialogue(d) => said(d, &mut lines),
            Element::DualDialogue(a, b) => {
                said(a, &mut lines);
                said(b, &mut lines);
            }
            _ => {}
        }
    }
    (headings, lines)
}
