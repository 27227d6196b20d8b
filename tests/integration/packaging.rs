//! The Docker packaging: docker-compose.yml, Dockerfile and .env.example, read as files (no
//! Docker engine needed). `scripts/check-docker` lints the same files with hadolint, the Compose
//! Specification schema and shellcheck; these tests pin down the project's own rules.

use std::collections::BTreeSet;
use std::path::Path;

use serde_yaml_ng::Value;

/// A file at the root of the repository.
fn repo_file(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

fn compose() -> Value {
    serde_yaml_ng::from_str(&repo_file("docker-compose.yml"))
        .expect("docker-compose.yml is not valid YAML")
}

fn service<'a>(compose: &'a Value, name: &str) -> &'a Value {
    compose
        .get("services")
        .and_then(|s| s.get(name))
        .unwrap_or_else(|| panic!("docker-compose.yml has no service {name:?}"))
}

fn strings(value: Option<&Value>) -> Vec<String> {
    value
        .and_then(Value::as_sequence)
        .map(|seq| {
            seq.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn compose_defines_mongo_app_localstack_and_tests() {
    let compose = compose();
    for name in ["mongo", "app", "localstack", "tests"] {
        let svc = service(&compose, name);
        assert!(svc.is_mapping(), "service {name} is not a mapping: {svc:?}");
    }
}

#[test]
fn every_published_port_is_bound_to_loopback() {
    let compose = compose();
    let services = compose
        .get("services")
        .and_then(Value::as_mapping)
        .expect("docker-compose.yml has no services mapping");
    let mut published = 0;
    for (name, svc) in services {
        let name = name.as_str().unwrap_or("?");
        let Some(ports) = svc.get("ports") else {
            continue;
        };
        let ports = ports
            .as_sequence()
            .unwrap_or_else(|| panic!("service {name}: ports is not a list"));
        for port in ports {
            published += 1;
            match port {
                Value::String(spec) => assert!(
                    spec.starts_with("127.0.0.1:"),
                    "service {name} publishes {spec:?}: bind it to 127.0.0.1 (127.0.0.1:HOST:CONTAINER)"
                ),
                Value::Mapping(_) => assert_eq!(
                    port.get("host_ip").and_then(Value::as_str),
                    Some("127.0.0.1"),
                    "service {name} publishes {port:?} without host_ip: 127.0.0.1"
                ),
                other => panic!(
                    "service {name} publishes {other:?}, which binds every interface: \
                     write it as \"127.0.0.1:HOST:CONTAINER\""
                ),
            }
        }
    }
    assert!(
        published >= 2,
        "mongo and localstack should publish their ports on 127.0.0.1"
    );
}

#[test]
fn mongo_runs_init_mongo_js_at_first_start() {
    let compose = compose();
    let mongo = service(&compose, "mongo");
    let volumes = mongo
        .get("volumes")
        .and_then(Value::as_sequence)
        .expect("service mongo has no volumes");
    let mounted = volumes.iter().any(|v| match v {
        Value::String(spec) => {
            let mut parts = spec.split(':');
            parts.next() == Some("./init-mongo.js")
                && parts
                    .next()
                    .is_some_and(|target| target.starts_with("/docker-entrypoint-initdb.d/"))
        }
        Value::Mapping(_) => {
            v.get("source").and_then(Value::as_str) == Some("./init-mongo.js")
                && v.get("target")
                    .and_then(Value::as_str)
                    .is_some_and(|target| target.starts_with("/docker-entrypoint-initdb.d/"))
        }
        _ => false,
    });
    assert!(
        mounted,
        "service mongo must mount ./init-mongo.js into /docker-entrypoint-initdb.d/: {volumes:?}"
    );
}

#[test]
fn mongo_and_localstack_have_healthchecks() {
    let compose = compose();
    for name in ["mongo", "localstack"] {
        let healthcheck = service(&compose, name)
            .get("healthcheck")
            .unwrap_or_else(|| panic!("service {name} has no healthcheck"));
        assert_ne!(
            healthcheck.get("disable").and_then(Value::as_bool),
            Some(true),
            "service {name}: healthcheck disabled"
        );
        let test = healthcheck
            .get("test")
            .unwrap_or_else(|| panic!("service {name}: healthcheck without a test"));
        let text = match test {
            Value::String(s) => s.clone(),
            Value::Sequence(_) => strings(Some(test)).join(" "),
            other => panic!("service {name}: healthcheck test is {other:?}"),
        };
        assert!(
            !text.trim().is_empty() && !text.starts_with("NONE"),
            "service {name}: healthcheck test {text:?} checks nothing"
        );
    }
}

#[test]
fn app_waits_until_mongo_is_healthy() {
    let compose = compose();
    let app = service(&compose, "app");
    let condition = app
        .get("depends_on")
        .and_then(|d| d.get("mongo"))
        .and_then(|m| m.get("condition"))
        .and_then(Value::as_str);
    assert_eq!(
        condition,
        Some("service_healthy"),
        "app must wait for mongo's healthcheck (depends_on: mongo: condition: service_healthy)"
    );
}

#[test]
fn mongo_is_mongodb_7() {
    let compose = compose();
    let image = service(&compose, "mongo")
        .get("image")
        .and_then(Value::as_str)
        .expect("service mongo has no image");
    assert!(
        image.starts_with("mongo:7."),
        "service mongo runs {image:?}; hcctl is written for MongoDB 7.x (mongo:7.0.x)"
    );
}

#[test]
fn tests_service_runs_only_in_the_tests_profile() {
    let compose = compose();
    let profiles = strings(service(&compose, "tests").get("profiles"));
    assert!(
        profiles.iter().any(|p| p == "tests"),
        "service tests must be in the `tests` profile, so that `docker compose up` leaves it out: \
         {profiles:?}"
    );
}

/// The Dockerfile as instructions: comments and blank lines dropped, continuation lines joined.
fn dockerfile_instructions() -> Vec<String> {
    let text = repo_file("Dockerfile");
    let mut instructions = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        if let Some(head) = trimmed.strip_suffix('\\') {
            current.push_str(head);
            current.push(' ');
        } else {
            current.push_str(trimmed);
            instructions.push(std::mem::take(&mut current));
        }
    }
    if !current.trim().is_empty() {
        instructions.push(current);
    }
    instructions
}

/// The keyword (upper-cased) and the arguments of an instruction.
fn split_instruction(instruction: &str) -> (String, &str) {
    let trimmed = instruction.trim();
    match trimmed.split_once(char::is_whitespace) {
        Some((keyword, args)) => (keyword.to_ascii_uppercase(), args.trim()),
        None => (trimmed.to_ascii_uppercase(), ""),
    }
}

/// The instructions of the last stage, its FROM first.
fn final_stage() -> Vec<String> {
    let instructions = dockerfile_instructions();
    let start = instructions
        .iter()
        .rposition(|i| split_instruction(i).0 == "FROM")
        .expect("the Dockerfile has no FROM");
    instructions[start..].to_vec()
}

/// The arguments of the last `keyword` instruction of a stage (the one in effect).
fn last_instruction(stage: &[String], keyword: &str) -> Option<String> {
    stage.iter().rev().find_map(|i| {
        let (k, args) = split_instruction(i);
        (k == keyword).then(|| args.to_owned())
    })
}

#[test]
fn dockerfile_final_stage_is_debian_bookworm_slim() {
    let stage = final_stage();
    let (_, from) = split_instruction(&stage[0]);
    let image = from
        .split_whitespace()
        .find(|word| !word.starts_with("--"))
        .expect("FROM without an image");
    assert!(
        image == "debian:bookworm-slim" || image.starts_with("debian:bookworm-slim@"),
        "the runtime (last) stage must be FROM debian:bookworm-slim, not {image:?}"
    );
}

#[test]
fn dockerfile_runs_hcctl_as_a_non_root_user() {
    let stage = final_stage();
    let user = last_instruction(&stage, "USER")
        .expect("the runtime stage sets no USER: it would run as root");
    let name = user.split(':').next().unwrap_or_default();
    assert!(
        !name.is_empty() && name != "root" && name != "0",
        "the runtime stage runs as {user:?}: it must not be root"
    );

    let entrypoint =
        last_instruction(&stage, "ENTRYPOINT").expect("the runtime stage has no ENTRYPOINT");
    let entrypoint: Vec<String> = serde_json::from_str(&entrypoint).unwrap_or_else(|e| {
        panic!("ENTRYPOINT {entrypoint} is not the exec (JSON array) form: {e}")
    });
    assert_eq!(
        entrypoint,
        ["hcctl"],
        "the image's entry point must be hcctl itself"
    );
}

/// Issue 22, finding 1: the app task (read-only root, uid 10001) mounts the task volume `work` at
/// /work; on Fargate that bind volume is root-owned 0755 unless the image declares `VOLUME` there.
#[test]
fn the_app_task_scratch_volume_is_writable_by_its_user() {
    let td: serde_json::Value =
        serde_json::from_str(&repo_file("task-definitions/app.json")).expect("app.json");
    let container = &td["containerDefinitions"][0];
    let user = container["user"].as_str().expect("app.json: user");
    let mount = container["mountPoints"]
        .as_array()
        .and_then(|m| m.iter().find(|m| m["sourceVolume"] == "work"))
        .expect("app.json mounts the work volume");
    let path = mount["containerPath"].as_str().expect("containerPath");
    assert_eq!(container["readonlyRootFilesystem"], true);

    let stage = final_stage();
    let declared: Vec<String> = stage
        .iter()
        .filter_map(|i| {
            let (k, args) = split_instruction(i);
            (k == "VOLUME").then(|| args.to_owned())
        })
        .flat_map(|args| {
            serde_json::from_str::<Vec<String>>(&args)
                .unwrap_or_else(|_| args.split_whitespace().map(str::to_owned).collect())
        })
        .collect();
    assert!(
        declared.iter().any(|v| v == path),
        "the runtime stage must declare VOLUME {path} (declared: {declared:?}): ECS creates the \
         bind volume root-owned otherwise and uid {user} cannot write to it"
    );
    // The directory is created owned by that user before the VOLUME instruction.
    let volume_at = stage
        .iter()
        .position(|i| split_instruction(i).0 == "VOLUME")
        .expect("VOLUME");
    let created = stage[..volume_at]
        .iter()
        .any(|i| i.contains(&format!("install -d -o {user} -g {user}")) && i.contains(path));
    assert!(
        created,
        "{path} must be created owned by {user} before VOLUME {path}"
    );
}

/// The variables a compose file interpolates: `${NAME}`, `${NAME:-default}`, `${NAME:?message}`
/// and the like (`$$` is a literal dollar sign).
fn compose_variables(text: &str) -> BTreeSet<String> {
    let bytes = text.as_bytes();
    let mut names = BTreeSet::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'$' {
            i += 1;
            continue;
        }
        match bytes.get(i + 1) {
            Some(b'$') => i += 2,
            Some(b'{') => {
                let start = i + 2;
                let mut end = start;
                while end < bytes.len()
                    && (bytes[end].is_ascii_alphanumeric() || bytes[end] == b'_')
                {
                    end += 1;
                }
                if end > start {
                    names.insert(text[start..end].to_owned());
                }
                i = end;
            }
            _ => i += 1,
        }
    }
    names
}

#[test]
fn compose_variables_are_found() {
    let found = compose_variables("a: ${A:?x} b: $${NOT} c: ${C_1:-d} e: $$E ${F}");
    let expected: BTreeSet<String> = ["A", "C_1", "F"].iter().map(|s| s.to_string()).collect();
    assert_eq!(found, expected);
}

#[test]
fn env_example_defines_every_variable_compose_uses() {
    let used = compose_variables(&repo_file("docker-compose.yml"));
    assert!(
        !used.is_empty(),
        "docker-compose.yml uses no variable: the parser is broken"
    );
    let defined: BTreeSet<String> = repo_file(".env.example")
        .lines()
        .map(str::trim)
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| line.split_once('='))
        .map(|(name, _)| name.trim().to_owned())
        .filter(|name| !name.is_empty())
        .collect();
    let missing: Vec<&String> = used.difference(&defined).collect();
    assert!(
        missing.is_empty(),
        ".env.example must define every variable docker-compose.yml uses; missing: {missing:?}"
    );
}
