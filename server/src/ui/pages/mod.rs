//! One module per page family. Each handler reads what it shows through the repository and
//! the engine, and renders it in the frame ([`super::view::page`]).

pub(crate) mod film;
pub(crate) mod project;
pub(crate) mod projects;
pub(crate) mod qualification;
pub(crate) mod runs;
pub(crate) mod scenes;
pub(crate) mod story;
pub(crate) mod system;
pub(crate) mod templates;

use maud::{Markup, html};

/// The tabs of a project's pages.
pub(crate) fn project_tabs(slug: &str, active: &str) -> Markup {
    let tabs = [
        ("", "Overview"),
        ("/qualification", "Qualification"),
        ("/scenes", "Scenes"),
        ("/film", "Film"),
        ("/story", "Story & characters"),
    ];
    html! {
        nav.tabs aria-label="Project" {
            @for (path, label) in tabs {
                a href=(format!("/projects/{slug}{path}")) class=[(active == label).then_some("active")] { (label) }
            }
            a href=(format!("/runs?project={slug}")) { "Runs" }
        }
    }
}
