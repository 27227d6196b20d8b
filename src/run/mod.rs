//! `hcctl run migrate|verify`: a migration (or a verification) as one-off ECS tasks of the app's
//! latest task definition, followed to their exit code.
//!
//! Each task gets the migrate or verify arguments as typed (plus `--shard K/N` when there are
//! several, and an explicit `--report s3://…` so that run knows where to read the result); the
//! network is the config's (subnets, the app security group, public IP or not), the connection
//! the task definition's secret. While the tasks run, their awslogs streams are passed on to
//! stderr; when they have stopped, their reports are read back from S3 and combined (the N
//! shard reports add up to one run's), and hcctl exits with the container's exit code.

pub mod follow;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use aws_sdk_ecs::types::{
    AssignPublicIp, AwsVpcConfiguration, ContainerOverride, KeyValuePair, LaunchType,
    NetworkConfiguration, PropagateTags, Tag, TaskOverride,
};
use serde::Serialize;

use crate::aws::s3::S3Url;
use crate::aws::{Aws, AwsError, Target};
use crate::config::Config;
use crate::error::Error;
use crate::migrate::location::{self, Location};
use crate::migrate::report::Report;
use crate::migrate::shard::Shard;
use crate::migrate::verify::VerifyReport;
use crate::resources::{network, security_group, service, task_definition};
use follow::{Stopped, Watched};

/// The `startedBy` of every task hcctl run starts (ListTasks --started-by hcctl-run finds them).
pub const STARTED_BY: &str = "hcctl-run";
/// The container of the app task definition that runs hcctl.
pub const CONTAINER: &str = "app";
/// A report larger than this is not a report hcctl wrote.
const MAX_REPORT_BYTES: i64 = 16 << 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Job {
    Migrate,
    Verify,
}

impl Job {
    pub fn name(self) -> &'static str {
        match self {
            Job::Migrate => "migrate",
            Job::Verify => "verify",
        }
    }
}

/// What `hcctl run` was asked.
#[derive(Debug, Clone)]
pub struct Request {
    pub config_path: PathBuf,
    pub endpoint_url: Option<String>,
    pub job: Job,
    /// The job's arguments as typed ([`crate::cli::task_arguments`]).
    pub args: Vec<String>,
    /// The parsed input, `--report` and (migrate) `--quarantine`.
    pub input: String,
    pub report: Option<Location>,
    pub quarantine: Option<Location>,
    pub tasks: u32,
    /// `None`: `--no-wait`.
    pub wait: Option<Duration>,
}

/// One task to start (pure: [`plan_tasks`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskSpec {
    pub shard: Shard,
    /// The container's command: `migrate s3://… --shard=2/3 --report=s3://…`.
    pub command: Vec<String>,
    /// Where the task writes its report.
    pub report: S3Url,
}

fn s3_only(flag: &str, location: &Option<Location>) -> Result<Option<S3Url>, Error> {
    match location {
        None => Ok(None),
        Some(Location::S3(url)) => Ok(Some(url.clone())),
        Some(Location::File(path)) => Err(Error::usage(format!(
            "hcctl run: {flag} {} is a local path, and the task has no access to this machine: \
             give an s3:// URL (or leave it out: the task writes beside the input)",
            path.display()
        ))),
    }
}

/// The tasks of a request, each with its shard, command and report (pure).
pub fn plan_tasks(req: &Request) -> Result<Vec<TaskSpec>, Error> {
    let input = match S3Url::parse(&req.input) {
        Some(Ok(url)) => url,
        Some(Err(e)) => return Err(Error::usage(e)),
        None => {
            return Err(Error::usage(format!(
                "hcctl run: the task reads its input from S3, and {} is not an s3:// URL: \
                 upload the export (aws s3 cp FILE s3://BUCKET/incoming/FILE) and give its URL",
                req.input
            )))
        }
    };
    let report = s3_only("--report", &req.report)?;
    let quarantine = s3_only("--quarantine", &req.quarantine)?;
    let shard_typed = req.args.iter().any(|a| a.starts_with("--shard="));
    if shard_typed && req.tasks > 1 {
        return Err(Error::usage(
            "hcctl run: --shard names one shard, --tasks N starts all N: give one of them",
        ));
    }
    let kept: Vec<&String> = req
        .args
        .iter()
        .filter(|a| !a.starts_with("--report=") && !a.starts_with("--quarantine="))
        .collect();
    let shards: Vec<Shard> = if req.tasks > 1 {
        (1..=req.tasks)
            .map(|k| Shard::new(k, req.tasks).map_err(Error::usage))
            .collect::<Result<_, _>>()?
    } else {
        let typed = req
            .args
            .iter()
            .find_map(|a| a.strip_prefix("--shard="))
            .map(|s| s.parse::<Shard>().map_err(Error::usage))
            .transpose()?;
        vec![typed.unwrap_or(Shard::ALL)]
    };
    Ok(shards
        .into_iter()
        .map(|shard| {
            let report = match (&report, req.job) {
                (Some(given), _) => location::for_shard(given, shard),
                (None, Job::Migrate) => match Location::default_report(&req.input, shard) {
                    Some(Location::S3(url)) => url,
                    _ => location::default_verify_report(&input, shard),
                },
                (None, Job::Verify) => location::default_verify_report(&input, shard),
            };
            let mut command = vec![req.job.name().to_string()];
            command.extend(kept.iter().map(|a| a.to_string()));
            if req.tasks > 1 {
                command.push(format!("--shard={}/{}", shard.number(), shard.count()));
            }
            command.push(format!("--report={report}"));
            if let Some(q) = &quarantine {
                command.push(format!("--quarantine={}", location::for_shard(q, shard)));
            }
            TaskSpec {
                shard,
                command,
                report,
            }
        })
        .collect())
}

/// Where and how the tasks run, looked up (read-only) from what deploy made.
#[derive(Debug, Clone)]
pub struct Placement {
    pub cluster: String,
    pub task_definition: String,
    /// `(log group, stream prefix)` of the app container's awslogs configuration.
    pub logs: Option<(String, String)>,
    pub subnets: Vec<String>,
    pub security_group: String,
    pub assign_public_ip: bool,
}

async fn place(aws: &Aws, config: &Config) -> Result<Placement, Error> {
    let family = config.family(CONTAINER);
    let Some((arn, td)) = task_definition::latest(&aws.ecs, &family).await? else {
        return Err(Error::usage(format!(
            "no task definition {family} is registered: run `hcctl deploy` first"
        )));
    };
    let Some(container) = td
        .container_definitions
        .iter()
        .find(|c| c.name == CONTAINER)
    else {
        return Err(Error::usage(format!(
            "task definition {arn} has no container named {CONTAINER}: run `hcctl deploy` to \
             register the app's task definition from task-definitions/app.json"
        )));
    };
    let logs = container
        .log_configuration
        .as_ref()
        .filter(|l| l.log_driver == "awslogs")
        .and_then(|l| {
            Some((
                l.options.get("awslogs-group")?.clone(),
                l.options.get("awslogs-stream-prefix")?.clone(),
            ))
        });
    let net = network::observe(aws, config).await?;
    let Some(vpc) = net.vpc_id else {
        return Err(Error::usage(format!(
            "network.vpc_id {}: no such VPC (the tasks need the network deploy uses)",
            config.network.vpc_id
        )));
    };
    if !net.problems.is_empty() {
        return Err(Error::usage(net.problems.join("; ")));
    }
    if net.subnets.is_empty() {
        return Err(Error::usage(format!(
            "VPC {vpc} has no subnet to run tasks in"
        )));
    }
    let group = security_group::group_name(config, "app");
    let Some(sg) = security_group::observe(&aws.ec2, &vpc, &group).await? else {
        return Err(Error::usage(format!(
            "security group {group} does not exist in {vpc}: run `hcctl deploy` first"
        )));
    };
    Ok(Placement {
        cluster: config.ecs.cluster.clone(),
        task_definition: arn,
        logs,
        subnets: net.subnets.into_iter().map(|(id, _)| id).collect(),
        security_group: sg.id,
        assign_public_ip: config.network.assign_public_ip,
    })
}

/// 12 hex digits from the OS random source: the run's id, in each task's environment
/// (`HCCTL_RUN_ID`) and tags, so the tasks of one run are found together.
fn new_run_id() -> Result<String, Error> {
    let mut bytes = [0u8; 6];
    getrandom::fill(&mut bytes)
        .map_err(|e| Error::failed(format!("no random run id from the OS: {e}")))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

async fn start(
    aws: &Aws,
    config: &Config,
    at: &Placement,
    spec: &TaskSpec,
    run_id: &str,
) -> Result<String, Error> {
    let label = shard_label(spec.shard);
    let vpc = AwsVpcConfiguration::builder()
        .set_subnets(Some(at.subnets.clone()))
        .security_groups(&at.security_group)
        .assign_public_ip(if at.assign_public_ip {
            AssignPublicIp::Enabled
        } else {
            AssignPublicIp::Disabled
        })
        .build()
        .map_err(|e| Error::failed(format!("building the network configuration: {e}")))?;
    let overrides = TaskOverride::builder()
        .container_overrides(
            ContainerOverride::builder()
                .name(CONTAINER)
                .set_command(Some(spec.command.clone()))
                .environment(
                    KeyValuePair::builder()
                        .name("HCCTL_RUN_ID")
                        .value(run_id)
                        .build(),
                )
                .build(),
        )
        .build();
    let mut tags: Vec<Tag> = config
        .tags
        .iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect();
    tags.push(Tag::builder().key("hcctl:run").value(run_id).build());
    tags.push(Tag::builder().key("hcctl:shard").value(&label).build());
    let out = aws
        .ecs
        .run_task()
        .cluster(&at.cluster)
        .task_definition(&at.task_definition)
        .launch_type(LaunchType::Fargate)
        .platform_version(service::PLATFORM_VERSION)
        .count(1)
        .started_by(STARTED_BY)
        .network_configuration(
            NetworkConfiguration::builder()
                .awsvpc_configuration(vpc)
                .build(),
        )
        .overrides(overrides)
        .set_tags(Some(tags))
        .propagate_tags(PropagateTags::TaskDefinition)
        .send()
        .await
        .map_err(|e| {
            AwsError::new(
                format!(
                    "starting task {} ({label}) on cluster {}",
                    at.task_definition, at.cluster
                ),
                &e,
            )
        })?;
    if let Some(arn) = out.tasks().first().and_then(|t| t.task_arn()) {
        return Ok(arn.to_string());
    }
    let why: Vec<String> = out
        .failures()
        .iter()
        .map(|f| {
            format!(
                "{}{}",
                f.reason().unwrap_or("no reason given"),
                f.detail().map(|d| format!(" ({d})")).unwrap_or_default()
            )
        })
        .collect();
    Err(Error::failed(format!(
        "ECS did not start task {} ({label}) on cluster {}: {}",
        at.task_definition,
        at.cluster,
        if why.is_empty() {
            "no task and no failure in the answer".to_string()
        } else {
            why.join("; ")
        }
    )))
}

fn shard_label(shard: Shard) -> String {
    format!("shard {}/{}", shard.number(), shard.count())
}

async fn stop(aws: &Aws, cluster: &str, arn: &str, reason: &str) -> Result<(), AwsError> {
    aws.ecs
        .stop_task()
        .cluster(cluster)
        .task(arn)
        .reason(reason)
        .send()
        .await
        .map(|_| ())
        .map_err(|e| AwsError::new(format!("stopping task {arn}"), &e))
}

/// One task of the run, as it ended (or was left, with `--no-wait`).
#[derive(Debug, Clone, Serialize)]
pub struct TaskResult {
    pub task_arn: String,
    pub shard: String,
    /// `log-group:stream`, where its output is.
    pub log_stream: Option<String>,
    pub report: String,
    pub last_status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stopped_reason: Option<String>,
}

/// The combined report: migrate's or verify's shape.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum Combined {
    Migrate(Report),
    Verify(VerifyReport),
}

/// What `hcctl run` prints.
#[derive(Debug, Clone, Serialize)]
pub struct RunResult {
    pub job: Job,
    pub run_id: String,
    pub cluster: String,
    pub task_definition: String,
    pub tasks: Vec<TaskResult>,
    /// Followed: the reports of the tasks combined; `None` with `--no-wait` or when a task
    /// ended without one.
    pub report: Option<Combined>,
    /// What hcctl exits with: the containers' exit code (see [`judge`]).
    pub exit_code: u8,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The run's exit code from how its tasks ended (pure): 0 when every container exited 0; else
/// the first task's failure — a task that never ran is 1 with its stopped reason, a container's
/// non-zero code is passed on — except that verify's 4 (differences) gives way to any failure.
pub fn judge(tasks: &[(String, Option<&Stopped>)]) -> (u8, Option<String>) {
    let mut differences = None;
    for (label, stopped) in tasks {
        match stopped {
            None => return (1, Some(format!("task {label} has not ended"))),
            Some(Stopped {
                exit_code: None,
                reason,
            }) => return (1, Some(format!("task {label} did not run: {reason}"))),
            Some(Stopped {
                exit_code: Some(0), ..
            }) => {}
            Some(Stopped {
                exit_code: Some(4), ..
            }) if differences.is_none() => {
                differences = Some(format!("task {label} found differences (exit 4)"));
            }
            Some(Stopped {
                exit_code: Some(4), ..
            }) => {}
            Some(Stopped {
                exit_code: Some(code),
                reason,
            }) => {
                let exit = u8::try_from(*code).ok().filter(|c| *c != 0).unwrap_or(1);
                return (
                    exit,
                    Some(format!("task {label} exited with code {code} ({reason})")),
                );
            }
        }
    }
    match differences {
        Some(d) => (4, Some(d)),
        None => (0, None),
    }
}

/// Start, follow, collect: the whole `hcctl run`. `progress` gets what run does (stderr),
/// `line` each log line of the tasks.
pub async fn run(
    req: &Request,
    progress: &dyn Fn(&str),
    line: &dyn Fn(&str),
    on_started: &dyn Fn(&RunResult),
) -> Result<RunResult, Error> {
    let specs = plan_tasks(req)?;
    let config = Config::load(&req.config_path)?;
    let aws = Aws::connect(&Target {
        region: config.region.clone(),
        endpoint_url: req.endpoint_url.clone(),
    })
    .await;
    let at = place(&aws, &config).await?;
    let run_id = new_run_id()?;
    let mut watched: Vec<Watched> = Vec::new();
    for spec in &specs {
        match start(&aws, &config, &at, spec, &run_id).await {
            Ok(arn) => {
                let label = format!("{}/{}", spec.shard.number(), spec.shard.count());
                let stream = at.logs.as_ref().map(|(group, prefix)| {
                    (
                        group.clone(),
                        format!("{prefix}/{CONTAINER}/{}", follow::task_id(&arn)),
                    )
                });
                progress(&format!("started {arn} ({})", shard_label(spec.shard)));
                watched.push(Watched {
                    arn,
                    label,
                    stream,
                    token: None,
                    last_status: String::new(),
                    stopped: None,
                });
            }
            Err(e) => {
                // A partial sharded run is no run: stop what did start (running the whole
                // command again is safe: the migration converges).
                for w in &watched {
                    let _ = stop(
                        &aws,
                        &at.cluster,
                        &w.arn,
                        "hcctl run: another shard failed to start",
                    )
                    .await;
                }
                return Err(e);
            }
        }
    }
    let mut result = RunResult {
        job: req.job,
        run_id: run_id.clone(),
        cluster: at.cluster.clone(),
        task_definition: at.task_definition.clone(),
        tasks: results(&watched, &specs),
        report: None,
        exit_code: 0,
        error: None,
    };
    on_started(&result);
    let Some(timeout) = req.wait else {
        return Ok(result);
    };
    if at.logs.is_none() {
        progress("the app container does not log through awslogs: no log lines to follow");
    }
    let deadline = Instant::now() + timeout;
    let ended = follow::follow(
        &aws,
        &at.cluster,
        CONTAINER,
        &mut watched,
        deadline,
        line,
        progress,
    )
    .await?;
    if !ended {
        let reason = format!(
            "hcctl run: --timeout {} reached",
            crate::output::duration(timeout)
        );
        for w in watched.iter().filter(|w| w.stopped.is_none()) {
            stop(&aws, &at.cluster, &w.arn, &reason).await?;
            progress(&format!("stopped {} ({reason})", w.arn));
        }
        result.tasks = results(&watched, &specs);
        result.exit_code = 1;
        result.error = Some(format!(
            "the task(s) did not end within {}: stopped; running the same command again is safe",
            crate::output::duration(timeout)
        ));
        return Ok(result);
    }
    result.tasks = results(&watched, &specs);
    let labels: Vec<(String, Option<&Stopped>)> = watched
        .iter()
        .map(|w| {
            (
                format!("{} ({})", follow::task_id(&w.arn), w.label),
                w.stopped.as_ref(),
            )
        })
        .collect();
    let (code, error) = judge(&labels);
    result.exit_code = code;
    result.error = error;
    // The reports exist when every task finished its work (0, or verify's 4).
    if code == 0 || code == 4 {
        result.report = Some(collect(&aws, req.job, &specs).await?);
    }
    Ok(result)
}

fn results(watched: &[Watched], specs: &[TaskSpec]) -> Vec<TaskResult> {
    watched
        .iter()
        .zip(specs)
        .map(|(w, spec)| TaskResult {
            task_arn: w.arn.clone(),
            shard: format!("{}/{}", spec.shard.number(), spec.shard.count()),
            log_stream: w.stream.as_ref().map(|(g, s)| format!("{g}:{s}")),
            report: spec.report.to_string(),
            last_status: if w.last_status.is_empty() {
                "PROVISIONING".to_string()
            } else {
                w.last_status.clone()
            },
            exit_code: w.stopped.as_ref().and_then(|s| s.exit_code),
            stopped_reason: w.stopped.as_ref().map(|s| s.reason.clone()),
        })
        .collect()
}

async fn read_report(aws: &Aws, url: &S3Url) -> Result<Vec<u8>, Error> {
    let out = aws
        .s3
        .get_object()
        .bucket(&url.bucket)
        .key(&url.key)
        .send()
        .await
        .map_err(|e| AwsError::new(format!("reading the task's report {url}"), &e))?;
    if out.content_length().unwrap_or(0) > MAX_REPORT_BYTES {
        return Err(Error::failed(format!(
            "{url} is larger than a report ({} bytes)",
            out.content_length().unwrap_or(0)
        )));
    }
    let body = out
        .body
        .collect()
        .await
        .map_err(|e| Error::failed(format!("reading the task's report {url}: {e}")))?;
    Ok(body.to_vec())
}

/// The reports of all tasks, read back from S3 and combined.
async fn collect(aws: &Aws, job: Job, specs: &[TaskSpec]) -> Result<Combined, Error> {
    let mut bodies = Vec::new();
    for spec in specs {
        bodies.push((
            spec.report.to_string(),
            read_report(aws, &spec.report).await?,
        ));
    }
    let bad = |url: &str, e: serde_json::Error| {
        Error::failed(format!("{url} is not a {} report: {e}", job.name()))
    };
    let none = || Error::failed("no task report to combine");
    match job {
        Job::Migrate => {
            let parts = bodies
                .iter()
                .map(|(u, b)| serde_json::from_slice::<Report>(b).map_err(|e| bad(u, e)))
                .collect::<Result<Vec<_>, _>>()?;
            Report::combine(&parts)
                .map(Combined::Migrate)
                .ok_or_else(none)
        }
        Job::Verify => {
            let parts = bodies
                .iter()
                .map(|(u, b)| serde_json::from_slice::<VerifyReport>(b).map_err(|e| bad(u, e)))
                .collect::<Result<Vec<_>, _>>()?;
            VerifyReport::combine(&parts)
                .map(Combined::Verify)
                .ok_or_else(none)
        }
    }
}

impl std::fmt::Display for RunResult {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for t in &self.tasks {
            let end = match (&t.exit_code, &t.stopped_reason) {
                (Some(code), _) => format!("exit {code}"),
                (None, Some(reason)) => format!("did not run: {reason}"),
                (None, None) => t.last_status.clone(),
            };
            writeln!(f, "task {} (shard {}): {end}", t.task_arn, t.shard)?;
            writeln!(f, "  report {}", t.report)?;
        }
        match &self.report {
            Some(Combined::Migrate(r)) => write!(f, "{r}"),
            Some(Combined::Verify(r)) => write!(f, "{r}"),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(job: Job, args: &[&str], tasks: u32) -> Request {
        let parse = |flag: &str| {
            args.iter()
                .find_map(|a| a.strip_prefix(&format!("--{flag}=")))
                .map(|v| Location::parse(v).unwrap())
        };
        Request {
            config_path: PathBuf::from("hcctl.yaml"),
            endpoint_url: None,
            job,
            args: args.iter().map(|s| s.to_string()).collect(),
            input: args[0].to_string(),
            report: parse("report"),
            quarantine: parse("quarantine"),
            tasks,
            wait: Some(Duration::from_secs(60)),
        }
    }

    #[test]
    fn each_task_gets_its_shard_and_a_report_beside_the_input() {
        let specs = plan_tasks(&request(
            Job::Migrate,
            &["s3://drops/incoming/2026/a.csv", "--batch-size=500"],
            3,
        ))
        .unwrap();
        assert_eq!(specs.len(), 3);
        assert_eq!(
            specs[1].command,
            [
                "migrate",
                "s3://drops/incoming/2026/a.csv",
                "--batch-size=500",
                "--shard=2/3",
                "--report=s3://drops/reports/2026/a.report.shard-2-of-3.json"
            ]
        );
        let one = plan_tasks(&request(Job::Verify, &["s3://drops/incoming/a.csv"], 1)).unwrap();
        assert_eq!(
            one[0].command,
            [
                "verify",
                "s3://drops/incoming/a.csv",
                "--report=s3://drops/reports/a.verify.json"
            ]
        );
        // Given outputs are split per shard, not written by all of them.
        let given = plan_tasks(&request(
            Job::Migrate,
            &[
                "s3://drops/incoming/a.csv",
                "--report=s3://out/r.json",
                "--quarantine=s3://out/q.csv",
            ],
            2,
        ))
        .unwrap();
        assert_eq!(
            given[0].command[2..],
            [
                "--shard=1/2",
                "--report=s3://out/r.shard-1-of-2.json",
                "--quarantine=s3://out/q.shard-1-of-2.csv"
            ]
        );
        // One shard by hand.
        let typed = plan_tasks(&request(
            Job::Migrate,
            &["s3://drops/incoming/a.csv", "--shard=2/4"],
            1,
        ))
        .unwrap();
        assert_eq!(
            typed[0].report.to_string(),
            "s3://drops/reports/a.report.shard-2-of-4.json"
        );
    }

    #[test]
    fn what_a_task_cannot_do_is_refused_before_anything_starts() {
        let err = |job, args: &[&str], tasks| {
            plan_tasks(&request(job, args, tasks))
                .unwrap_err()
                .to_string()
        };
        assert!(err(Job::Migrate, &["data/a.csv"], 1).contains("is not an s3:// URL"));
        assert!(err(
            Job::Migrate,
            &["s3://drops/incoming/a.csv", "--quarantine=q.csv"],
            1
        )
        .contains("--quarantine q.csv is a local path"));
        assert!(err(
            Job::Verify,
            &["s3://drops/incoming/a.csv", "--report=r.json"],
            1
        )
        .contains("--report r.json is a local path"));
        assert!(err(
            Job::Migrate,
            &["s3://drops/incoming/a.csv", "--shard=1/2"],
            2
        )
        .contains("give one of them"));
    }

    #[test]
    fn the_exit_code_is_the_containers_and_a_task_that_never_ran_is_1() {
        let ok = Stopped {
            exit_code: Some(0),
            reason: "EssentialContainerExited".into(),
        };
        let four = Stopped {
            exit_code: Some(4),
            reason: "EssentialContainerExited".into(),
        };
        let two = Stopped {
            exit_code: Some(2),
            reason: "EssentialContainerExited".into(),
        };
        let never = Stopped {
            exit_code: None,
            reason: "TaskFailedToStart: CannotPullContainerError".into(),
        };
        fn t<'a>(s: &[Option<&'a Stopped>]) -> Vec<(String, Option<&'a Stopped>)> {
            s.iter()
                .enumerate()
                .map(|(i, s)| (format!("t{i}"), *s))
                .collect()
        }
        assert_eq!(judge(&t(&[Some(&ok), Some(&ok)])), (0, None));
        let (code, why) = judge(&t(&[Some(&ok), Some(&two)]));
        assert_eq!(code, 2);
        assert!(why.unwrap().contains("task t1 exited with code 2"));
        let (code, why) = judge(&t(&[Some(&never)]));
        assert_eq!(code, 1);
        assert!(why.unwrap().contains("did not run: TaskFailedToStart"));
        assert_eq!(judge(&t(&[Some(&four), Some(&ok)])).0, 4);
        // A failure outranks differences: the differences may come from the missing part.
        assert_eq!(judge(&t(&[Some(&four), Some(&two)])).0, 2);
        let odd = Stopped {
            exit_code: Some(300),
            reason: String::new(),
        };
        assert_eq!(judge(&t(&[Some(&odd)])).0, 1);
        assert_eq!(judge(&t(&[None])).0, 1);
    }
}
