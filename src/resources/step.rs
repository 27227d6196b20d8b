//! One step of a plan, as data: which resource ([`Kind`] and name), what will happen to it
//! ([`Action`]) and what changes, one human line each.
//!
//! These types sit in the resources floor because every kind's pure `changes` function returns a
//! [`Step`]; the deploy engine above collects them into its plan, and read-only commands reuse the
//! same change lines (backup-status reports drift with [`diff`]).

use serde::Serialize;
use serde_json::Value;

/// A resource kind, as plans name it: `id` in JSON (`log_group`), `label` in text ("log group").
/// Each kind's file defines its own `KIND`, so adding a kind touches no list here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Kind {
    id: &'static str,
    label: &'static str,
}

impl Kind {
    pub const fn new(id: &'static str, label: &'static str) -> Kind {
        Kind { id, label }
    }

    pub fn id(self) -> &'static str {
        self.id
    }

    pub fn label(self) -> &'static str {
        self.label
    }
}

impl Serialize for Kind {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.id)
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
    pub fn symbol(self) -> &'static str {
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

    pub fn word(self) -> &'static str {
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
    /// What the config would say of the resource as AWS holds it now, for the settings that
    /// cost (`log_groups.app.retention_days=30`): how a plan prices what it changes.
    #[serde(skip)]
    pub was: Vec<String>,
}

impl Step {
    pub fn new(kind: Kind, name: impl Into<String>, action: Action, changes: Vec<String>) -> Step {
        Step {
            kind,
            name: name.into(),
            action,
            changes,
            result: None,
            was: Vec::new(),
        }
    }

    /// The step, with what the config would say of the resource as it is now (see `was`).
    pub fn was(mut self, was: Vec<String>) -> Step {
        self.was = was;
        self
    }

    /// `unchanged` when nothing differs, else `when_changed` (update, or replace for what AWS
    /// cannot update in place), with the differences as its lines.
    pub fn compared(
        kind: Kind,
        name: impl Into<String>,
        when_changed: Action,
        changes: Vec<String>,
    ) -> Step {
        let action = if changes.is_empty() {
            Action::Unchanged
        } else {
            when_changed
        };
        Step::new(kind, name, action, changes)
    }

    /// Destroy's step for what exists (`delete`) or does not (`absent`).
    pub fn removal(kind: Kind, name: impl Into<String>, exists: bool) -> Step {
        let action = if exists {
            Action::Delete
        } else {
            Action::Absent
        };
        Step::new(kind, name, action, vec![])
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
}
