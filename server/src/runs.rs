//! `slate runs`: list, inspect and administer runs from the command line.

use clap::Subcommand;
use slate_engine::{Engine, RunFilter, RunId, RunStatus};

/// `slate runs ...`
#[derive(Subcommand, Debug)]
pub enum RunsCommand {
    /// List runs, newest first.
    Ls {
        /// Only this workflow.
        #[arg(long)]
        workflow: Option<String>,
        /// Only this status (pending, running, waiting, sleeping, completed, failed, cancelled).
        #[arg(long)]
        status: Option<RunStatus>,
        /// Only this project.
        #[arg(long)]
        project: Option<String>,
        /// Only runs started on this version of their workflow's definition.
        #[arg(long)]
        version: Option<u32>,
        /// Only runs that reached this patch point (`Ctx::patched`).
        #[arg(long)]
        patch: Option<String>,
        /// How many.
        #[arg(long, default_value_t = 20)]
        limit: u32,
    },
    /// A run's steps and recent history.
    Show {
        /// Run id.
        id: RunId,
    },
    /// Cancel a run and its children.
    Cancel {
        /// Run id.
        id: RunId,
        /// Why.
        #[arg(long, default_value = "cancelled from the command line")]
        reason: String,
    },
    /// Retry a failed step (the run's failed step when --step is omitted).
    Retry {
        /// Run id.
        id: RunId,
        /// Step name.
        #[arg(long)]
        step: Option<String>,
    },
    /// Reset a run to a step: that step and everything after it runs again.
    Reset {
        /// Run id.
        id: RunId,
        /// Step name.
        #[arg(long)]
        step: String,
    },
}

fn short(id: &RunId) -> String {
    id.to_string()
}

/// Run the command.
pub async fn run(engine: &Engine, cmd: RunsCommand) -> anyhow::Result<()> {
    match cmd {
        RunsCommand::Ls {
            workflow,
            status,
            project,
            version,
            patch,
            limit,
        } => {
            let runs = engine
                .list(&RunFilter {
                    workflow,
                    status,
                    scope: project,
                    workflow_version: version,
                    patch,
                    limit: Some(limit),
                    ..Default::default()
                })
                .await?;
            println!(
                "{:<36}  {:<16} {:>3} {:<10} {:<18} {:>9}  created",
                "id", "workflow", "v", "status", "project", "cost $"
            );
            for r in runs {
                println!(
                    "{:<36}  {:<16} {:>3} {:<10} {:<18} {:>9.4}  {}",
                    short(&r.id),
                    r.workflow,
                    r.workflow_version,
                    r.status,
                    r.scope.unwrap_or_default(),
                    r.cost_micros as f64 / 1e6,
                    r.created_at.format("%Y-%m-%d %H:%M:%S")
                );
            }
        }
        RunsCommand::Show { id } => print_run(&engine.inspect(id).await?),
        RunsCommand::Cancel { id, reason } => {
            let o = engine.cancel(id, &reason).await?;
            println!(
                "cancelled: {} run(s); asked to stop: {} run(s)",
                o.cancelled.len(),
                o.requested.len()
            );
        }
        RunsCommand::Retry { id, step } => {
            match step {
                Some(s) => {
                    engine
                        .retry_step(id, &s, "retried from the command line")
                        .await?
                }
                None => engine.resume(id, "retried from the command line").await?,
            }
            println!("run {id} is pending again; a worker will pick it up");
        }
        RunsCommand::Reset { id, step } => {
            engine
                .reset_to_step(id, &step, "reset from the command line")
                .await?;
            println!("run {id} will run again from `{step}`");
        }
    }
    Ok(())
}

/// A run as `slate runs show` prints it: its state, who holds it, its cost, its steps and its
/// last events.
fn print_run(d: &slate_engine::RunDetail) {
    println!("run       {}", d.run.id);
    println!(
        "workflow  {} (version {}, started by {})",
        d.run.workflow,
        d.run.workflow_version,
        d.run.build.as_deref().unwrap_or("an unrecorded build")
    );
    println!("status    {}", d.run.status);
    if let Some(s) = &d.current_step {
        println!("current   {s}");
    }
    if let Some(a) = &d.alive {
        let step = match (&a.step, a.attempt, a.running_ms) {
            (Some(s), Some(n), Some(ms)) => {
                format!(
                    "; step `{s}` attempt {n} running for {:.1} s",
                    ms as f64 / 1000.0
                )
            }
            _ => String::new(),
        };
        println!(
            "alive     {} holds it until {}{}{step}",
            a.worker,
            a.lease_until.format("%H:%M:%S"),
            if a.lease_holds {
                ""
            } else {
                " (lapsed: the worker is gone, another takes it over)"
            }
        );
    }
    if let Some(e) = &d.run.error {
        println!("error     {e}");
    }
    if let Some(b) = &d.blocked_on {
        println!("BLOCKED   {}", b.message);
    }
    println!(
        "cost      ${:.4} (tree){}",
        d.tree_cost_usd,
        d.budget_usd
            .map(|b| format!(" of a ${b:.2} budget"))
            .unwrap_or_default()
    );
    println!(
        "\n{:<48} {:<8} {:<14} {:>8} {:>10}",
        "step", "kind", "status", "attempts", "ms"
    );
    for s in &d.steps {
        println!(
            "{:<48} {:<8} {:<14} {:>8} {:>10}",
            s.name, s.kind, s.status, s.attempts, s.duration_ms
        );
        if let Some(c) = &s.child_id {
            println!("    └ child run {c} (slate runs show {c})");
        }
        if let Some(e) = &s.error {
            println!("    └ {e}");
        }
    }
    println!("\n{} events; the last ones:", d.events.len());
    for e in d.events.iter().rev().take(10).rev() {
        println!(
            "  {:>4} {} {:<18} {}",
            e.seq,
            e.at.format("%H:%M:%S%.3f"),
            e.data.kind(),
            e.step.clone().unwrap_or_default()
        );
    }
}

/// An estimate as a table for the terminal.
pub fn estimate_table(e: &slate_workflows::estimate::Estimate) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{} scenes, {} characters (counted from the {}); prices as of {}",
        e.scenes,
        e.characters,
        if e.basis == "scenes" {
            "qualified scenes"
        } else {
            "gather data"
        },
        e.prices_as_of
    );
    let _ = writeln!(
        out,
        "{:<14} {:<11} {:<48} {:>9} {:>9} {:>10} {:>10}",
        "stage", "call", "provider / model", "units lo", "units hi", "low $", "high $"
    );
    for l in &e.lines {
        let _ = writeln!(
            out,
            "{:<14} {:<11} {:<48} {:>9.0} {:>9.0} {:>10.4} {:>10.4}",
            l.stage,
            serde_json::to_value(l.kind)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default(),
            format!("{} {}", l.price.provider, l.price.model),
            l.units_low,
            l.units_high,
            l.low_usd,
            l.high_usd
        );
    }
    for s in &e.stages {
        let _ = writeln!(
            out,
            "{:<14} {:>91.4} {:>10.4}",
            s.stage, s.low_usd, s.high_usd
        );
    }
    let _ = writeln!(
        out,
        "total: ${:.2} to ${:.2}, most likely ${:.2}",
        e.low_usd, e.high_usd, e.expected_usd
    );
    out
}

/// `slate progress`'s text.
pub fn progress_text(p: &crate::routes::scenes::Progress) -> String {
    let mut out = format!(
        "{} of {} scenes done ({:.1} of {:.1} s); {} in flight, {} waiting, {} failed\n",
        p.completed,
        p.scenes,
        p.seconds_done,
        p.seconds_planned,
        p.in_flight.len(),
        p.waiting,
        p.failed.len()
    );
    for f in &p.in_flight {
        out.push_str(&format!(
            "  scene {:>3}  {}\n",
            f.scene_number,
            f.status.as_str()
        ));
    }
    for n in &p.failed {
        out.push_str(&format!(
            "  scene {n:>3}  failed: retry it with POST /api/scenes/{{id}}/generate\n"
        ));
    }
    out
}

/// Estimated against spent, as a table for the terminal.
pub fn costs_table(c: &crate::routes::production::Costs) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<14} {:<11} {:>10} {:>10} {:>10} {:>10} {:>6}",
        "stage", "call", "est. low", "est. mid", "est. high", "spent", "steps"
    );
    for r in &c.comparison {
        let _ = writeln!(
            out,
            "{:<14} {:<11} {:>10.4} {:>10.4} {:>10.4} {:>10.4} {:>6}",
            r.stage,
            serde_json::to_value(r.kind)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default(),
            r.estimate_low_usd,
            r.estimate_expected_usd,
            r.estimate_high_usd,
            r.actual_usd,
            r.paid_steps
        );
    }
    let _ = writeln!(
        out,
        "spent ${:.2}; estimated ${:.2} to ${:.2}, most likely ${:.2}",
        c.actual_usd, c.estimate.low_usd, c.estimate.high_usd, c.estimate.expected_usd
    );
    if c.estimated_usd > 0.0 {
        let _ = writeln!(
            out,
            "of which ${:.4} estimated: a provider stated no cost for those calls",
            c.estimated_usd
        );
    }
    out
}

/// `slate doctor`'s report as text: one line per finding, failures first.
pub fn doctor_table(r: &slate_activities::doctor::Report) -> String {
    use slate_activities::doctor::Status;
    use std::fmt::Write;
    let mut out = String::new();
    let mut f = r.findings.clone();
    f.sort_by_key(|x| match x.status {
        Status::Fail => 0,
        Status::Warn => 1,
        Status::Ok => 2,
    });
    for x in &f {
        let mark = match x.status {
            Status::Ok => "ok  ",
            Status::Warn => "warn",
            Status::Fail => "FAIL",
        };
        let _ = write!(out, "{mark}  {:<28} {}", x.check, x.message);
        if let Some(v) = &x.variable
            && x.status != Status::Ok
        {
            let _ = write!(out, "  [{v}]");
        }
        out.push('\n');
    }
    let _ = writeln!(
        out,
        "{}",
        if r.ok {
            "the configured providers should work"
        } else {
            "something above would fail: set what each FAIL names"
        }
    );
    out
}
