//! A plan is data: one [`Step`] per resource, saying what will happen to it and what changes.
//!
//! Deploy computes the plan from the config (desired) and what AWS describes (actual) with read-only
//! calls, prints it, and — unless `--dry-run` — applies it step by step. The same structure is
//! printed as text for people and as JSON for pipelines.

use std::fmt;

use serde::Serialize;
use serde_json::Value;

use crate::aws::CallCount;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    LogGroup,
    EcsCluster,
    TaskDefinition,
    BackupVault,
    BackupPlan,
    BackupSelection,
    /// Something the config refers to that hcctl does not manage (secret, role, KMS key).
    Reference,
}

impl Kind {
    pub fn label(self) -> &'static str {
        match self {
            Kind::LogGroup => "log group",
            Kind::EcsCluster => "ECS cluster",
            Kind::TaskDefinition => "task definition",
            Kind::BackupVault => "backup vault",
            Kind::BackupPlan => "backup plan",
            Kind::BackupSelection => "backup selection",
            Kind::Reference => "reference",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Create,
    Update,
    /// Deleted and created again (AWS cannot update it in place: backup selections).
    Replace,
    Unchanged,
    Delete,
    /// Destroy leaves it in place (a vault that holds recovery points).
    Keep,
    /// Destroy finds nothing to remove.
    Absent,
    /// A referenced resource (secret, role, KMS key) does not exist.
    Missing,
    /// A referenced resource exists but cannot serve its use: a role that does not trust the
    /// service that assumes it, or may not read the secrets; a key policy that does not let
    /// CloudWatch Logs use the key.
    Unusable,
}

impl Action {
    fn symbol(self) -> &'static str {
        match self {
            Action::Create => "+",
            Action::Update => "~",
            Action::Replace => "±",
            Action::Unchanged | Action::Absent => "=",
            Action::Delete => "-",
            Action::Keep => "!",
            Action::Missing | Action::Unusable => "?",
        }
    }

    fn word(self) -> &'static str {
        match self {
            Action::Create => "create",
            Action::Update => "update",
            Action::Replace => "replace",
            Action::Unchanged => "unchanged",
            Action::Delete => "delete",
            Action::Keep => "keep",
            Action::Absent => "absent",
            Action::Missing => "missing",
            Action::Unusable => "unusable",
        }
    }

    /// Whether applying this step calls a mutating API.
    pub fn mutates(self) -> bool {
        matches!(
            self,
            Action::Create | Action::Update | Action::Replace | Action::Delete
        )
    }
}

/// One resource in the plan.
#[derive(Debug, Clone, Serialize)]
pub struct Step {
    pub kind: Kind,
    pub name: String,
    pub action: Action,
    /// What changes, one human line each ("retention_days: 14 → 30").
    pub changes: Vec<String>,
    /// After apply: what happened ("revision 3", an ARN), or the error.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<String>,
}

impl Step {
    pub fn new(kind: Kind, name: impl Into<String>, action: Action, changes: Vec<String>) -> Step {
        Step {
            kind,
            name: name.into(),
            action,
            changes,
            result: None,
        }
    }
}

/// The whole plan and, after apply, its outcome.
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    pub command: &'static str,
    pub region: String,
    pub endpoint: String,
    pub dry_run: bool,
    pub steps: Vec<Step>,
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
        let stopped = error.is_some();
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
        write!(f, "{}", self.render_steps())
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
        if let Some(e) = &o.error {
            out.push_str(&format!("error: {e}\n"));
        }
        out
    }
}

/// The differences between two JSON values, one line per changed leaf: `path: old → new`.
pub fn diff(path: &str, old: &Value, new: &Value, out: &mut Vec<String>) {
    match (old, new) {
        (Value::Object(a), Value::Object(b)) => {
            let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
            keys.sort();
            keys.dedup();
            for k in keys {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                diff(
                    &p,
                    a.get(k).unwrap_or(&Value::Null),
                    b.get(k).unwrap_or(&Value::Null),
                    out,
                );
            }
        }
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => {
            for (i, (x, y)) in a.iter().zip(b).enumerate() {
                diff(&format!("{path}[{i}]"), x, y, out);
            }
        }
        _ if old != new => out.push(format!("{path}: {} → {}", short(old), short(new))),
        _ => {}
    }
}

/// A value for a plan line: strings bare, long values cut.
pub fn short(v: &Value) -> String {
    let s = match v {
        Value::Null => "(none)".to_string(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    if s.chars().count() > 80 {
        let cut: String = s.chars().take(77).collect();
        format!("{cut}…")
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn diff_names_changed_leaves_only() {
        let mut out = Vec::new();
        diff(
            "",
            &json!({"a": 1, "b": {"c": "x", "d": [1, 2]}, "gone": true}),
            &json!({"a": 1, "b": {"c": "y", "d": [1, 3]}, "new": "v"}),
            &mut out,
        );
        assert_eq!(
            out,
            [
                "b.c: x → y",
                "b.d[1]: 2 → 3",
                "gone: true → (none)",
                "new: (none) → v"
            ]
        );
    }

    #[test]
    fn plan_text_has_one_line_per_resource() {
        let plan = Plan {
            command: "deploy",
            region: "eu-west-3".into(),
            endpoint: "http://127.0.0.1:4566".into(),
            dry_run: true,
            steps: vec![
                Step::new(
                    Kind::LogGroup,
                    "/ecs/a",
                    Action::Create,
                    vec!["retention 30 days".into()],
                ),
                Step::new(Kind::EcsCluster, "c", Action::Unchanged, vec![]),
            ],
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
