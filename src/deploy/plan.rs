//! A plan is data: one [`Step`] per resource, saying what will happen to it and what changes.
//!
//! Deploy computes the plan from the config (desired) and what AWS describes (actual) with read-only
//! calls, prints it, and — unless `--dry-run` — applies it step by step. The same structure is
//! printed as text for people and as JSON for pipelines.

use std::fmt;

use serde::Serialize;

use crate::aws::CallCount;
use crate::cost::PlanCost;
pub use crate::resources::step::{Action, Kind, Step};

/// The whole plan and, after apply, its outcome.
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    pub command: &'static str,
    pub region: String,
    pub endpoint: String,
    pub dry_run: bool,
    pub steps: Vec<Step>,
    /// Deploy: the estimated monthly cost once applied, and what the plan changes of it
    /// (`hcctl cost` has the lines).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cost: Option<PlanCost>,
    /// Deploy: why there is no estimate (no prices for the region).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cost_note: Option<String>,
    /// Filled after apply (or right away for a dry run).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outcome: Option<Outcome>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    pub applied: bool,
    pub created: usize,
    pub updated: usize,
    pub replaced: usize,
    pub deleted: usize,
    pub unchanged: usize,
    pub kept: usize,
    /// Referenced resources that do not exist (warnings; errors with `--strict`).
    pub missing: usize,
    /// Referenced resources that exist but cannot serve their use (the same: warnings, or
    /// errors with `--strict`).
    pub unusable: usize,
    pub api_calls: CallCount,
    pub elapsed_seconds: f64,
    /// `deploy --wait`: the MongoDB service once stable ("stable: 1/1 running …:3").
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// How a deploy stopped by `--strict` begins its error: the plan's summary tells it apart from a
/// failed apply (nothing to rerun until the references exist).
pub const STRICT_STOP: &str =
    "--strict: referenced resource(s) missing or unusable, nothing was changed";

impl Plan {
    pub fn count(&self, action: Action) -> usize {
        self.steps.iter().filter(|s| s.action == action).count()
    }

    /// Steps of this action that were carried out: after an error, a mutating step counts only
    /// when it succeeded (the failed one and those never attempted do not).
    fn count_done(&self, action: Action, stopped: bool) -> usize {
        self.steps
            .iter()
            .filter(|s| s.action == action)
            .filter(|s| {
                !stopped
                    || !s.action.mutates()
                    || s.result
                        .as_deref()
                        .is_some_and(|r| !r.starts_with("FAILED"))
            })
            .count()
    }

    pub fn has_changes(&self) -> bool {
        self.steps.iter().any(|s| s.action.mutates())
    }

    pub fn outcome(
        &self,
        applied: bool,
        api_calls: CallCount,
        elapsed: f64,
        error: Option<String>,
    ) -> Outcome {
        // A dry run applies nothing, so a stop (`--strict`) leaves its counts those of the plan.
        let stopped = error.is_some() && !self.dry_run;
        Outcome {
            applied,
            created: self.count_done(Action::Create, stopped),
            updated: self.count_done(Action::Update, stopped),
            replaced: self.count_done(Action::Replace, stopped),
            deleted: self.count_done(Action::Delete, stopped),
            unchanged: self.count(Action::Unchanged) + self.count(Action::Absent),
            kept: self.count(Action::Keep),
            missing: self.count(Action::Missing),
            unusable: self.count(Action::Unusable),
            api_calls,
            elapsed_seconds: (elapsed * 1000.0).round() / 1000.0,
            service: None,
            error,
        }
    }

    /// The plan lines, without the outcome.
    pub fn render_steps(&self) -> String {
        let width = self
            .steps
            .iter()
            .map(|s| s.kind.label().len() + 1 + s.name.len())
            .max()
            .unwrap_or(0);
        let mut out = String::new();
        for s in &self.steps {
            let what = format!("{} {}", s.kind.label(), s.name);
            let mut line = format!(
                "  {} {what:<width$}  {}",
                s.action.symbol(),
                s.action.word()
            );
            if !s.changes.is_empty() {
                line.push_str(": ");
                line.push_str(&s.changes.join("; "));
            }
            if let Some(r) = &s.result {
                line.push_str(&format!(" [{r}]"));
            }
            out.push_str(&line);
            out.push('\n');
        }
        out
    }
}

impl fmt::Display for Plan {
    /// The plan: a header and one line per resource.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "hcctl {} plan ({}, {}){}:",
            self.command,
            self.region,
            self.endpoint,
            if self.dry_run { ", dry run" } else { "" }
        )?;
        write!(f, "{}", self.render_steps())?;
        if let Some(c) = &self.cost {
            writeln!(f, "  {c}")?;
        } else if let Some(n) = &self.cost_note {
            writeln!(f, "  estimated cost: {n}")?;
        }
        Ok(())
    }
}

impl Plan {
    /// After apply: what each changed resource became, and the summary line.
    pub fn outcome_text(&self) -> String {
        let Some(o) = &self.outcome else {
            return String::new();
        };
        let mut out = String::new();
        for s in self
            .steps
            .iter()
            .filter(|s| s.result.is_some() && s.action.mutates())
        {
            out.push_str(&format!(
                "  {} {} {}: {}\n",
                s.action.word(),
                s.kind.label(),
                s.name,
                s.result.as_deref().unwrap_or("")
            ));
        }
        let strict_stop = o
            .error
            .as_deref()
            .is_some_and(|e| e.starts_with(STRICT_STOP));
        let head = if self.dry_run {
            "dry run, nothing changed; the plan"
        } else if strict_stop {
            "stopped before any change (create or fix the references marked ?, then run again)"
        } else if o.error.is_some() {
            "stopped on an error (run again to converge); so far"
        } else {
            "done"
        };

        let calls = format!(
            "{} API calls ({} read-only, {} mutating) in {:.2} s",
            o.api_calls.read + o.api_calls.mutating,
            o.api_calls.read,
            o.api_calls.mutating,
            o.elapsed_seconds
        );
        let mut kept = if o.kept > 0 {
            format!(", {} kept", o.kept)
        } else {
            String::new()
        };
        if o.missing > 0 {
            kept.push_str(&format!(", {} referenced resource(s) MISSING", o.missing));
        }
        if o.unusable > 0 {
            kept.push_str(&format!(", {} referenced resource(s) UNUSABLE", o.unusable));
        }
        let counts = if self.dry_run {
            format!(
                "would create {}, update {}, replace {}, delete {}; {} unchanged",
                o.created, o.updated, o.replaced, o.deleted, o.unchanged
            )
        } else {
            format!(
                "{} created, {} updated, {} replaced, {} deleted, {} unchanged",
                o.created, o.updated, o.replaced, o.deleted, o.unchanged
            )
        };
        out.push_str(&format!("{head}: {counts}{kept} — {calls}\n"));
        if let Some(s) = &o.service {
            out.push_str(&format!("ECS service {s}\n"));
        }
        if let Some(e) = &o.error {
            out.push_str(&format!("error: {e}\n"));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::{cluster, log_group};

    #[test]
    fn plan_text_has_one_line_per_resource() {
        let plan = Plan {
            command: "deploy",
            region: "eu-west-3".into(),
            endpoint: "http://127.0.0.1:4566".into(),
            dry_run: true,
            steps: vec![
                Step::new(
                    log_group::KIND,
                    "/ecs/a",
                    Action::Create,
                    vec!["retention 30 days".into()],
                ),
                Step::new(cluster::KIND, "c", Action::Unchanged, vec![]),
            ],
            cost: None,
            cost_note: None,
            outcome: None,
        };
        let text = plan.to_string();
        assert!(
            text.contains("+ log group /ecs/a  create: retention 30 days"),
            "{text}"
        );
        assert!(text.contains("= ECS cluster c     unchanged"), "{text}");
        assert!(plan.has_changes());
    }
}
