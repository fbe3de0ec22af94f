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
        /// Only blocked runs: their journal no longer fits the code (same as --status blocked).
        #[arg(long)]
        blocked: bool,
        /// How many.
        #[arg(long, default_value_t = 20)]
        limit: u32,
    },
    /// A run's steps and recent history.
    Show {
        /// Run id.
        id: RunId,
    },
    /// Cancel a run and its children, or every run a filter selects.
    Cancel {
        /// Run id (or select runs with --workflow, --version, --status).
        id: Option<RunId>,
        /// Why.
        #[arg(long, default_value = "cancelled from the command line")]
        reason: String,
        /// Which runs, for a bulk action.
        #[command(flatten)]
        select: Select,
    },
    /// Retry a failed step (the run's failed step when --step is omitted), re-drive a blocked
    /// run on the code deployed now, or retry every run a filter selects.
    Retry {
        /// Run id (or select runs with --workflow, --version, --status).
        id: Option<RunId>,
        /// Step name.
        #[arg(long)]
        step: Option<String>,
        /// Which runs, for a bulk action.
        #[command(flatten)]
        select: Select,
    },
    /// A new run on the code deployed now that keeps what a stopped run journaled before a
    /// step: the way on for a run a change to its workflow blocked.
    Fork {
        /// Run id (a top-level run that has stopped).
        id: RunId,
        /// The step it runs anew from.
        #[arg(long)]
        from_step: String,
        /// Why.
        #[arg(long, default_value = "forked from the command line")]
        reason: String,
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

/// Runs selected for a bulk action.
#[derive(clap::Args, Debug, Default)]
pub struct Select {
    /// Every run of this workflow.
    #[arg(long)]
    workflow: Option<String>,
    /// Every run started on this version of its workflow.
    #[arg(long)]
    version: Option<u32>,
    /// Every run in this state.
    #[arg(long)]
    status: Option<RunStatus>,
}

impl Select {
    fn filter(&self) -> Option<RunFilter> {
        (self.workflow.is_some() || self.version.is_some() || self.status.is_some()).then(|| {
            RunFilter {
                workflow: self.workflow.clone(),
                workflow_version: self.version,
                status: self.status,
                ..Default::default()
            }
        })
    }
}

/// Every run `filter` selects, newest first.
pub async fn select_all(
    engine: &Engine,
    filter: &RunFilter,
) -> anyhow::Result<Vec<slate_engine::RunRecord>> {
    let mut out = vec![];
    let mut before = None;
    loop {
        let page = engine
            .list(&RunFilter {
                before,
                limit: Some(500),
                ..filter.clone()
            })
            .await?;
        let Some(last) = page.last() else { break };
        before = Some(last.id);
        out.extend(page);
    }
    Ok(out)
}

/// Do `action` to one run, or to every run `select` selects; says what happened to each.
async fn one_or_many<F, Fut>(
    engine: &Engine,
    id: Option<RunId>,
    select: &Select,
    action: F,
) -> anyhow::Result<()>
where
    F: Fn(RunId) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<String>>,
{
    let ids = match (id, select.filter()) {
        (Some(id), None) => vec![id],
        (None, Some(f)) => select_all(engine, &f)
            .await?
            .into_iter()
            .map(|r| r.id)
            .collect(),
        (Some(_), Some(_)) => anyhow::bail!(
            "give a run id or a selection (--workflow, --version, --status), not both"
        ),
        (None, None) => {
            anyhow::bail!("give a run id, or select runs with --workflow, --version or --status")
        }
    };
    if ids.len() == 1 && id.is_some() {
        println!("{}", action(ids[0]).await?);
        return Ok(());
    }
    let (mut done, mut left) = (0, 0);
    for id in ids {
        match action(id).await {
            Ok(m) => {
                done += 1;
                println!("{id}  {m}");
            }
            Err(e) => {
                left += 1;
                println!("{id}  left: {e}");
            }
        }
    }
    println!("{done} done, {left} left");
    Ok(())
}

fn short(id: &RunId) -> String {
    id.to_string()
}

/// Run the command.
pub async fn run(state: &crate::state::AppState, cmd: RunsCommand) -> anyhow::Result<()> {
    let engine = &state.engine;
    match cmd {
        RunsCommand::Ls {
            workflow,
            status,
            project,
            version,
            patch,
            blocked,
            limit,
        } => {
            let runs = engine
                .list(&RunFilter {
                    workflow,
                    status: if blocked {
                        Some(RunStatus::Blocked)
                    } else {
                        status
                    },
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
        RunsCommand::Cancel { id, reason, select } => {
            one_or_many(engine, id, &select, |id| {
                let reason = reason.clone();
                async move {
                    let o = engine.cancel(id, &reason).await?;
                    Ok(format!(
                        "cancelled: {} run(s); asked to stop: {} run(s)",
                        o.cancelled.len(),
                        o.requested.len()
                    ))
                }
            })
            .await?;
        }
        RunsCommand::Retry { id, step, select } => {
            if step.is_some() && id.is_none() {
                anyhow::bail!("--step retries one run's step: give the run id");
            }
            one_or_many(engine, id, &select, |id| {
                let step = step.clone();
                async move {
                    match step {
                        Some(s) => {
                            engine
                                .retry_step(id, &s, "retried from the command line")
                                .await?
                        }
                        None => engine.resume(id, "retried from the command line").await?,
                    }
                    Ok(format!(
                        "run {id} is pending again; a worker will pick it up"
                    ))
                }
            })
            .await?;
        }
        RunsCommand::Fork {
            id,
            from_step,
            reason,
        } => {
            let run = engine.fork(id, &from_step, &reason).await?;
            if let Some(slug) = run
                .scope
                .as_deref()
                .and_then(|sc| slate_workflows::Slug::parse(sc).ok())
            {
                crate::service::adopt(state, &slug, &run)
                    .await
                    .map_err(|e| anyhow::anyhow!("{}", e.message))?;
            }
            println!(
                "run {} forks {id} from `{from_step}` on {} (version {}); a worker will pick it up",
                run.id,
                run.build.as_deref().unwrap_or("this build"),
                run.workflow_version
            );
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
