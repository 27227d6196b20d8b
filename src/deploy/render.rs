//! Task definition templates → the definitions deploy registers.
//!
//! A template is the JSON `aws ecs register-task-definition --cli-input-json` accepts, with
//! `{{ path }}` placeholders filled from the config. A string that is exactly one placeholder takes
//! the value with its JSON type (a number, a list of `{name, value}`, an object), and a key whose
//! value is absent from the config (`null`) is dropped; placeholders inside longer strings are
//! interpolated. An unknown placeholder is an error naming the template and the placeholder.

use std::path::{Path, PathBuf};

use serde_json::{json, Map, Value};

use crate::config::{looks_secret, Config, Container, RoleKind, SecretRole};
use crate::error::Error;
use crate::resources::task_definition::TaskDef;
pub use crate::resources::task_definition::CONTAINERS;
use crate::resources::Outputs;

#[derive(Debug, Clone)]
pub struct Rendered {
    /// `mongo` or `app`.
    pub container: &'static str,
    pub template: PathBuf,
    /// The JSON as rendered (what `hcctl render` prints).
    pub json: Value,
    pub task_def: TaskDef,
}

pub fn templates_dir(config: &Config, config_path: &Path) -> PathBuf {
    let base = config_path.parent().unwrap_or(Path::new("."));
    match &config.ecs.templates {
        Some(dir) => base.join(dir),
        None => base.join("../task-definitions"),
    }
}

/// The two templates, read once: deploy renders them at plan time and again as the steps before
/// the task definitions produce ids and ARNs.
#[derive(Debug, Clone)]
pub struct Templates {
    items: Vec<(&'static str, PathBuf, String)>,
}

impl Templates {
    pub fn load(config: &Config, config_path: &Path) -> Result<Templates, Error> {
        let dir = templates_dir(config, config_path);
        let items = CONTAINERS
            .iter()
            .map(|&name| {
                let path = dir.join(format!("{name}.json"));
                let text = std::fs::read_to_string(&path).map_err(|e| {
                    Error::usage(format!(
                        "cannot read the task definition template {}: {e} (set ecs.templates in \
                         the config to its directory)",
                        path.display()
                    ))
                })?;
                Ok((name, path, text))
            })
            .collect::<Result<_, Error>>()?;
        Ok(Templates { items })
    }

    /// Both task definitions for `region` (the region the awslogs driver writes to), with what
    /// `outputs` knows ([`crate::resources::AFTER_APPLY`] for the rest).
    pub fn render(
        &self,
        config: &Config,
        region: &str,
        outputs: &Outputs,
    ) -> Result<Vec<Rendered>, Error> {
        self.items
            .iter()
            .map(|(name, path, text)| {
                render(name, path, text, &context(config, name, region, outputs))
            })
            .collect()
    }
}

/// Render both task definitions for `region`, as a plan on an empty account shows them.
pub fn render_all(
    config: &Config,
    config_path: &Path,
    region: &str,
) -> Result<Vec<Rendered>, Error> {
    Templates::load(config, config_path)?.render(config, region, &Outputs::default())
}

fn container<'a>(config: &'a Config, name: &str) -> (&'a Container, &'a str) {
    if name == "mongo" {
        (&config.containers.mongo, &config.log_groups.mongo.name)
    } else {
        (&config.containers.app, &config.log_groups.app.name)
    }
}

/// The secrets hcctl creates that a container gets without the config naming them: variable,
/// secret, JSON key. A variable the container's `secrets` sets itself keeps the config's ARN.
pub fn managed_secrets(name: &str) -> &'static [(&'static str, SecretRole, &'static str)] {
    if name == "mongo" {
        &[
            ("MONGO_INITDB_ROOT_USERNAME", SecretRole::Root, "username"),
            ("MONGO_INITDB_ROOT_PASSWORD", SecretRole::Root, "password"),
        ]
    } else {
        &[("HCCTL_MONGODB_URI", SecretRole::Writer, "uri")]
    }
}

/// The variable hcctl's commands read the KMS key of the objects they write from.
pub const SSE_KMS_KEY_VARIABLE: &str = "HCCTL_SSE_KMS_KEY_ID";

/// A role's ARN: adopted from the config, else created (known once the role step ran).
fn role_arn(config: &Config, outputs: &Outputs, role: RoleKind) -> String {
    match config.adopted_role(role) {
        Some(arn) => arn.to_string(),
        None => Outputs::show(outputs.roles.get(&role)),
    }
}

/// The values placeholders can name.
pub fn context(config: &Config, name: &str, region: &str, outputs: &Outputs) -> Value {
    let (c, log_group) = container(config, name);
    let mut environment: Vec<Value> = c
        .environment
        .iter()
        .map(|(k, v)| json!({"name": k, "value": v}))
        .collect();
    // What the app writes to the drops bucket (quarantines, reports, dumps) is encrypted with
    // the bucket's key, as the bucket's default encryption would.
    if let (false, Some(key)) = (name == "mongo", &config.drops.kms_key_arn) {
        if !c.environment.contains_key(SSE_KMS_KEY_VARIABLE) {
            environment.push(json!({"name": SSE_KMS_KEY_VARIABLE, "value": key}));
        }
    }
    // The app logs JSON lines on ECS (CloudWatch Logs Insights and the alarms' metric filters
    // read their fields) unless the config says otherwise.
    if name != "mongo" && !c.environment.contains_key(crate::logging::FORMAT_VARIABLE) {
        environment.push(json!({"name": crate::logging::FORMAT_VARIABLE, "value": "json"}));
    }
    let mut secrets: Vec<Value> = c
        .secrets
        .iter()
        .map(|(k, v)| json!({"name": k, "valueFrom": v}))
        .collect();
    for (var, role, key) in managed_secrets(name) {
        if !c.secrets.contains_key(*var) {
            let value_from = match outputs.secrets.get(role) {
                Some(arn) => format!("{arn}:{key}::"),
                None => Outputs::show(None),
            };
            secrets.push(json!({"name": var, "valueFrom": value_from}));
        }
    }
    let task_role = if name == "mongo" {
        RoleKind::MongoTask
    } else {
        RoleKind::AppTask
    };
    let volume = c.volume.as_ref().map(|v| {
        let fs = match &v.efs_file_system_id {
            Some(id) => id.clone(),
            None => Outputs::show(outputs.file_system_id.as_ref()),
        };
        json!({
            "name": v.name,
            "container_path": v.container_path,
            "efs_file_system_id": fs,
            "access_point_id": Outputs::show(outputs.access_point_id.as_ref()),
        })
    });
    let tags: Vec<Value> = config
        .tags
        .iter()
        .map(|(k, v)| json!({"key": k, "value": v}))
        .collect();
    json!({
        "project": config.project,
        "environment": config.environment,
        "region": region,
        "cluster": config.ecs.cluster,
        "family": config.family(name),
        "execution_role_arn": role_arn(config, outputs, RoleKind::Execution),
        "task_role_arn": role_arn(config, outputs, task_role),
        "mongo_host": config.mongo_host(),
        "log_group": log_group,
        "tags": tags,
        "container": {
            "name": name,
            "image": c.image,
            "cpu": c.cpu,
            "memory": c.memory,
            "cpu_string": c.cpu.to_string(),
            "memory_string": c.memory.to_string(),
            "port": c.port,
            "environment": environment,
            "secrets": secrets,
            "command": if c.command.is_empty() { Value::Null } else { json!(c.command) },
            "volume": volume,
        },
    })
}

/// Render one template text.
pub fn render(
    container: &'static str,
    path: &Path,
    text: &str,
    ctx: &Value,
) -> Result<Rendered, Error> {
    let file = path.display();
    let template: Value = serde_json::from_str(text)
        .map_err(|e| Error::usage(format!("{file}: not valid JSON: {e}")))?;
    let mut seen = Placeholders::default();
    let json = fill(&template, ctx, &mut seen).unwrap_or(Value::Null);
    let mut unknown = seen.unknown;
    if !unknown.is_empty() {
        unknown.sort();
        unknown.dedup();
        return Err(Error::usage(format!(
            "{file}: unknown placeholder{} {} (known: project, environment, region, cluster, \
             family, execution_role_arn, task_role_arn, mongo_host, log_group, tags, container.*)",
            if unknown.len() == 1 { "" } else { "s" },
            unknown.join(", ")
        )));
    }
    // A setting the config gives but the template never uses would be silently ignored, and a
    // change to it never deployed: refuse it.
    for key in OPTIONAL_SETTINGS {
        let set = ctx
            .get("container")
            .and_then(|c| c.get(key))
            .is_some_and(|v| !(v.is_null() || v.as_array().is_some_and(|a| a.is_empty())));
        let prefix = format!("container.{key}");
        let used = seen
            .used
            .iter()
            .any(|p| p == &prefix || p.starts_with(&format!("{prefix}.")));
        if set && !used {
            return Err(Error::usage(format!(
                "{file}: containers.{container}.{key} is set in the config but this template \
                 never uses {{{{ {prefix} }}}}: remove it from the config or use it in the template"
            )));
        }
    }
    let task_def: TaskDef = serde_path_to_error::deserialize(&json).map_err(|e| {
        let mut empty = seen.empty;
        empty.sort();
        empty.dedup();
        let hint = if empty.is_empty() {
            String::new()
        } else {
            format!(
                "; left empty by the config: {} (set {} in containers.{container})",
                empty.join(", "),
                empty
                    .iter()
                    .map(|p| p.trim_start_matches("container."))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        Error::usage(format!(
            "{file}: {}: {} (after filling the placeholders{hint})",
            e.path(),
            e.inner()
        ))
    })?;
    for c in &task_def.container_definitions {
        if let Some(e) = c.environment.iter().find(|e| looks_secret(&e.name)) {
            return Err(Error::usage(format!(
                "{file}: container {}: environment variable {} looks like a credential; inject \
                 it through `secrets` (a Secrets Manager or SSM ARN), never as plaintext",
                c.name, e.name
            )));
        }
    }
    Ok(Rendered {
        container,
        template: path.to_path_buf(),
        json,
        task_def,
    })
}

/// Optional container settings of the config, each of which a template must use when it is set.
const OPTIONAL_SETTINGS: [&str; 5] = ["port", "command", "volume", "environment", "secrets"];

/// What filling a template met: placeholders it names that the context lacks, those it used,
/// and whole-value placeholders the config left empty (their key was dropped).
#[derive(Debug, Default)]
struct Placeholders {
    unknown: Vec<String>,
    used: Vec<String>,
    empty: Vec<String>,
}

/// Fill placeholders; `None` means "absent" (the key or element is dropped).
fn fill(v: &Value, ctx: &Value, seen: &mut Placeholders) -> Option<Value> {
    match v {
        Value::String(s) => fill_string(s, ctx, seen),
        Value::Array(items) => Some(Value::Array(
            items.iter().filter_map(|i| fill(i, ctx, seen)).collect(),
        )),
        Value::Object(map) => {
            let mut out = Map::new();
            for (k, item) in map {
                if let Some(filled) = fill(item, ctx, seen) {
                    out.insert(k.clone(), filled);
                }
            }
            Some(Value::Object(out))
        }
        other => Some(other.clone()),
    }
}

fn lookup<'a>(ctx: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(ctx, |v, part| v.get(part))
}

fn fill_string(s: &str, ctx: &Value, seen: &mut Placeholders) -> Option<Value> {
    let trimmed = s.trim();
    if let Some(inner) = trimmed
        .strip_prefix("{{")
        .and_then(|t| t.strip_suffix("}}"))
    {
        if !inner.contains("{{") && !inner.contains("}}") {
            let path = inner.trim();
            return match lookup(ctx, path) {
                Some(Value::Null) => {
                    seen.used.push(path.to_string());
                    seen.empty.push(path.to_string());
                    None
                }
                Some(v) => {
                    seen.used.push(path.to_string());
                    Some(v.clone())
                }
                None => {
                    seen.unknown.push(path.to_string());
                    None
                }
            };
        }
    }
    let mut out = String::new();
    let mut rest = s;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let Some(end) = rest[start..].find("}}") else {
            break;
        };
        let path = rest[start + 2..start + end].trim();
        match lookup(ctx, path) {
            Some(Value::String(v)) => out.push_str(v),
            Some(Value::Null) | None => seen.unknown.push(path.to_string()),
            Some(other) => out.push_str(&other.to_string()),
        }
        seen.used.push(path.to_string());
        rest = &rest[start + end + 2..];
    }
    out.push_str(rest);
    Some(Value::String(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_placeholders_keep_their_type_and_absent_values_drop_the_key() {
        let ctx = json!({"a": 5, "list": [{"name": "X", "value": "1"}], "none": null, "s": "v"});
        let mut seen = Placeholders::default();
        let out = fill(
            &json!({"n": "{{ a }}", "l": "{{list}}", "gone": "{{ none }}", "mixed": "x-{{ s }}-{{ a }}"}),
            &ctx,
            &mut seen,
        );
        assert!(seen.unknown.is_empty());
        assert_eq!(seen.empty, ["none"]);
        seen.used.sort();
        assert_eq!(seen.used, ["a", "a", "list", "none", "s"]);
        assert_eq!(
            out,
            Some(json!({"n": 5, "l": [{"name": "X", "value": "1"}], "mixed": "x-v-5"}))
        );
    }

    fn shipped() -> (Config, PathBuf) {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("infra/hcctl.yaml");
        let text = std::fs::read_to_string(&path).unwrap();
        let config = Config::parse(&text, &path, &|_| Some("000000000000".into())).unwrap();
        (config, path)
    }

    #[test]
    fn the_shipped_config_renders_with_the_shipped_templates() {
        let (config, path) = shipped();
        let rendered = render_all(&config, &path, "eu-west-3").unwrap();
        assert_eq!(rendered.len(), 2);
    }

    #[test]
    fn the_app_encrypts_what_it_writes_with_the_drops_buckets_key() {
        let (mut config, path) = shipped();
        let env = |config: &Config, container: &str| {
            let rendered = render_all(config, &path, "eu-west-3").unwrap();
            let r = rendered.iter().find(|r| r.container == container).unwrap();
            r.json["containerDefinitions"][0]["environment"].clone()
        };
        let has_key = |v: &Value| {
            v.as_array()
                .is_some_and(|a| a.iter().any(|e| e["name"] == SSE_KMS_KEY_VARIABLE))
        };
        assert!(!has_key(&env(&config, "app")));
        let key = "arn:aws:kms:eu-west-3:000000000000:key/1234abcd-12ab-34cd-56ef-1234567890ab";
        config.drops.kms_key_arn = Some(key.into());
        let app = env(&config, "app");
        let set: Vec<&Value> = app
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["name"] == SSE_KMS_KEY_VARIABLE)
            .collect();
        assert_eq!(set.len(), 1, "{app}");
        assert_eq!(set[0]["value"], key);
        assert!(!has_key(&env(&config, "mongo")));
    }

    #[test]
    fn the_app_logs_json_lines_unless_the_config_says_otherwise() {
        let (mut config, path) = shipped();
        let format = |config: &Config, container: &str| {
            let rendered = render_all(config, &path, "eu-west-3").unwrap();
            let r = rendered.iter().find(|r| r.container == container).unwrap();
            let env = r.json["containerDefinitions"][0]["environment"].clone();
            let set: Vec<Value> = env
                .as_array()
                .unwrap()
                .iter()
                .filter(|e| e["name"] == "HCCTL_LOG_FORMAT")
                .map(|e| e["value"].clone())
                .collect();
            set
        };
        assert_eq!(format(&config, "app"), vec![json!("json")]);
        assert!(format(&config, "mongo").is_empty());
        config
            .containers
            .app
            .environment
            .insert("HCCTL_LOG_FORMAT".into(), "text".into());
        assert_eq!(format(&config, "app"), vec![json!("text")]);
    }

    #[test]
    fn container_logs_are_never_dropped_silently() {
        // Issue 22, finding 7: without `mode`, ECS now defaults awslogs to non-blocking with a
        // 10 MiB buffer, and lines of an auditable migration could be lost under throttling.
        let (config, path) = shipped();
        let rendered = render_all(&config, &path, "eu-west-3").unwrap();
        let options = |container: &str| {
            let r = rendered
                .iter()
                .find(|r| r.container == container)
                .unwrap_or_else(|| panic!("no {container} task definition"));
            r.json["containerDefinitions"][0]["logConfiguration"]["options"].clone()
        };
        assert_eq!(options("app")["mode"], "blocking");
        assert_eq!(options("mongo")["mode"], "non-blocking");
        assert_eq!(options("mongo")["max-buffer-size"], "25m");
    }

    #[test]
    fn a_setting_the_template_never_uses_is_refused() {
        let (mut config, path) = shipped();
        config.containers.app.port = Some(8080);
        let err = render_all(&config, &path, "eu-west-3")
            .unwrap_err()
            .to_string();
        assert!(
            err.ends_with(
                "app.json: containers.app.port is set in the config but this template never uses \
                 {{ container.port }}: remove it from the config or use it in the template"
            ),
            "{err}"
        );
        let (mut config, path) = shipped();
        config.containers.mongo.command = vec!["mongod".into(), "--quiet".into()];
        let err = render_all(&config, &path, "eu-west-3")
            .unwrap_err()
            .to_string();
        assert!(err.contains("containers.mongo.command is set"), "{err}");
    }

    #[test]
    fn a_setting_the_template_needs_is_named_when_missing() {
        let (mut config, path) = shipped();
        config.containers.mongo.port = None;
        let err = render_all(&config, &path, "eu-west-3")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(
                "mongo.json: containerDefinitions[0].portMappings[0]: missing field `containerPort` \
                 (after filling the placeholders; left empty by the config: container.port (set \
                 port in containers.mongo))"
            ),
            "{err}"
        );
    }

    #[test]
    fn unknown_placeholders_are_reported() {
        let err = render(
            "app",
            Path::new("t.json"),
            r#"{"family": "{{ nope.x }}"}"#,
            &json!({}),
        )
        .unwrap_err();
        assert!(
            err.to_string().contains("unknown placeholder nope.x"),
            "{err}"
        );
    }
}
