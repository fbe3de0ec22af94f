//! `slate approval …`: the approval gate from the terminal, through the same checks as the API
//! (a decision goes to the waiting run as a signal; the serving process picks it up).

use clap::Subcommand;

use crate::routes::approval::{awaiting_in, decide_scene};
use crate::state::AppState;

/// What `slate approval` does.
#[derive(Debug, Subcommand)]
pub enum ApprovalCommand {
    /// The scenes of a project whose composites await approval.
    List {
        /// The project's slug.
        slug: String,
        /// Print as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Turn the gate on or off for a project.
    Require {
        /// The project's slug.
        slug: String,
        /// `on` or `off`.
        #[arg(value_parser = ["on", "off"])]
        state: String,
    },
    /// Approve a scene's composite: its video is made from it.
    Approve {
        /// The scene's id.
        scene: String,
    },
    /// Reject a scene's composite: a new composite iteration is made from the note.
    Reject {
        /// The scene's id.
        scene: String,
        /// What to change.
        #[arg(long)]
        note: String,
    },
    /// Approve every composite of a project that awaits approval now.
    ApproveAll {
        /// The project's slug.
        slug: String,
    },
}

fn api(e: crate::error::ApiError) -> anyhow::Error {
    anyhow::anyhow!("{}", e.message)
}

/// Run it.
pub async fn run(s: &AppState, what: ApprovalCommand) -> anyhow::Result<()> {
    match what {
        ApprovalCommand::List { slug, json } => {
            let slug = slate_workflows::slug::Slug::parse(&slug)?;
            let list = awaiting_in(s, &slug).await.map_err(api)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&list)?);
                return Ok(());
            }
            println!(
                "approval gate: {}; {} scene(s) awaiting approval",
                if list.required { "on" } else { "off" },
                list.awaiting.len()
            );
            for a in &list.awaiting {
                println!(
                    "  scene {:>3}  {}  round {}  {} iteration(s)  composite {}",
                    a.scene_number, a.scene_id, a.round, a.iterations, a.composite
                );
                for note in &a.rejections {
                    println!("             rejected: {note}");
                }
            }
            Ok(())
        }
        ApprovalCommand::Require { slug, state } => {
            let slug = slate_workflows::slug::Slug::parse(&slug)?;
            s.film.repo.project(&slug).await?;
            s.film
                .repo
                .set_approval_required(&slug, state == "on")
                .await?;
            println!("approval gate of `{slug}`: {state}");
            Ok(())
        }
        ApprovalCommand::Approve { scene } => {
            let d = decide_scene(s, &scene, "approve", None, None)
                .await
                .map_err(api)?;
            println!("approved round {} of scene {}", d.round, d.scene_id);
            Ok(())
        }
        ApprovalCommand::Reject { scene, note } => {
            let d = decide_scene(s, &scene, "reject", Some(note), None)
                .await
                .map_err(api)?;
            println!(
                "rejected round {} of scene {}: a new composite iteration is being made",
                d.round, d.scene_id
            );
            Ok(())
        }
        ApprovalCommand::ApproveAll { slug } => {
            let slug = slate_workflows::slug::Slug::parse(&slug)?;
            let all = crate::routes::approval::approve_all_in(s, &slug)
                .await
                .map_err(api)?;
            println!("approved {} scene(s)", all.approved.len());
            for d in &all.approved {
                println!("  {} (round {})", d.scene_id, d.round);
            }
            Ok(())
        }
    }
}
