//! Following started tasks: DescribeTasks with backoff, their awslogs streams read forward
//! (GetLogEvents) and passed on line by line, and what a stopped task's fields mean.

use std::time::{Duration, Instant};

use aws_sdk_ecs::types::Task;

use crate::aws::{Aws, AwsError};

/// The slowest a follow polls when nothing happens.
const MAX_DELAY: Duration = Duration::from_secs(10);
/// After the last task stopped, polls of its logs in a row without a new line before the
/// stream is taken as complete (the awslogs driver delivers the last lines after the stop).
const QUIET_POLLS: u32 = 3;

/// A task being followed.
#[derive(Debug, Clone)]
pub struct Watched {
    pub arn: String,
    /// `1/3`: the prefix of its log lines when there are several tasks.
    pub label: String,
    /// `(log group, stream)`, when the container logs through awslogs.
    pub stream: Option<(String, String)>,
    pub token: Option<String>,
    pub last_status: String,
    pub stopped: Option<Stopped>,
}

/// How a stopped task ended.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Stopped {
    /// The container's exit code; `None` when it never ran (the task failed to start).
    pub exit_code: Option<i32>,
    /// ECS's stop code and reasons, for the message.
    pub reason: String,
}

/// The task id: the last segment of its ARN.
pub fn task_id(arn: &str) -> &str {
    arn.rsplit('/').next().unwrap_or(arn)
}

/// How a STOPPED task ended (pure): its `container`'s exit code, or why it did not run.
pub fn stopped(task: &Task, container: &str) -> Stopped {
    let c = task
        .containers()
        .iter()
        .find(|c| c.name() == Some(container));
    let mut reasons = Vec::new();
    if let Some(code) = task.stop_code() {
        reasons.push(code.as_str().to_string());
    }
    if let Some(r) = task.stopped_reason().filter(|r| !r.is_empty()) {
        reasons.push(r.to_string());
    }
    if let Some(r) = c.and_then(|c| c.reason()).filter(|r| !r.is_empty()) {
        reasons.push(format!("container {container}: {r}"));
    }
    Stopped {
        exit_code: c.and_then(|c| c.exit_code()),
        reason: if reasons.is_empty() {
            "no reason given".to_string()
        } else {
            reasons.join(": ")
        },
    }
}

/// Follow `tasks` on `cluster` until all have stopped (true) or `deadline` passes (false),
/// passing each new log line to `line` and each status change to `progress`.
pub async fn follow(
    aws: &Aws,
    cluster: &str,
    container: &str,
    tasks: &mut [Watched],
    deadline: Instant,
    line: &dyn Fn(&str),
    progress: &dyn Fn(&str),
) -> Result<bool, AwsError> {
    let several = tasks.len() > 1;
    let mut delay = Duration::from_secs(1);
    let mut quiet = 0;
    loop {
        let mut news = false;
        for t in tasks.iter_mut() {
            news |= read_logs(aws, t, several, line).await?;
        }
        let all_stopped = tasks.iter().all(|t| t.stopped.is_some());
        if all_stopped {
            // The last lines arrive after the stop: wait until the streams stay quiet.
            quiet = if news { 0 } else { quiet + 1 };
            if quiet >= QUIET_POLLS {
                return Ok(true);
            }
        } else {
            describe(aws, cluster, container, tasks, progress).await?;
            if tasks.iter().all(|t| t.stopped.is_some()) {
                delay = Duration::from_secs(1);
            }
        }
        let now = Instant::now();
        if now >= deadline {
            return Ok(tasks.iter().all(|t| t.stopped.is_some()));
        }
        delay = if news || all_stopped {
            Duration::from_secs(1)
        } else {
            (delay * 2).min(MAX_DELAY)
        };
        tokio::time::sleep(delay.min(deadline - now)).await;
    }
}

/// The status of every task not yet stopped.
async fn describe(
    aws: &Aws,
    cluster: &str,
    container: &str,
    tasks: &mut [Watched],
    progress: &dyn Fn(&str),
) -> Result<(), AwsError> {
    let open: Vec<String> = tasks
        .iter()
        .filter(|t| t.stopped.is_none())
        .map(|t| t.arn.clone())
        .collect();
    for chunk in open.chunks(100) {
        let out = aws
            .ecs
            .describe_tasks()
            .cluster(cluster)
            .set_tasks(Some(chunk.to_vec()))
            .send()
            .await
            .map_err(|e| AwsError::new(format!("describing the tasks on cluster {cluster}"), &e))?;
        for task in out.tasks() {
            let Some(t) = tasks
                .iter_mut()
                .find(|t| Some(t.arn.as_str()) == task.task_arn())
            else {
                continue;
            };
            let status = task.last_status().unwrap_or("UNKNOWN").to_string();
            if status != t.last_status {
                progress(&format!("task {} ({}): {status}", task_id(&t.arn), t.label));
                t.last_status = status.clone();
            }
            if status == "STOPPED" {
                t.stopped = Some(stopped(task, container));
            }
        }
        // A task ECS no longer knows (stopped long ago): ended, how is not known.
        for f in out.failures() {
            if let Some(t) = tasks
                .iter_mut()
                .find(|t| f.arn() == Some(t.arn.as_str()) && t.stopped.is_none())
            {
                t.stopped = Some(Stopped {
                    exit_code: None,
                    reason: format!(
                        "ECS cannot describe the task: {}",
                        f.reason().unwrap_or("no reason given")
                    ),
                });
            }
        }
    }
    Ok(())
}

/// The new lines of one task's stream; true when there were any. A stream not created yet
/// (the container has not started) has no lines.
async fn read_logs(
    aws: &Aws,
    t: &mut Watched,
    several: bool,
    line: &dyn Fn(&str),
) -> Result<bool, AwsError> {
    let Some((group, stream)) = t.stream.clone() else {
        return Ok(false);
    };
    let mut any = false;
    // Pages until the stream has nothing more (the token comes back unchanged).
    for _ in 0..100 {
        let out = aws
            .logs
            .get_log_events()
            .log_group_name(&group)
            .log_stream_name(&stream)
            .start_from_head(true)
            .set_next_token(t.token.clone())
            .send()
            .await;
        let out = match out {
            Ok(out) => out,
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_resource_not_found_exception()) =>
            {
                return Ok(any)
            }
            Err(e) => {
                return Err(AwsError::new(
                    format!("reading log stream {stream} of {group}"),
                    &e,
                ))
            }
        };
        for event in out.events() {
            let message = event.message().unwrap_or_default();
            for text in message.trim_end_matches(['\n', '\r']).split('\n') {
                if several {
                    line(&format!("[{}] {text}", t.label));
                } else {
                    line(text);
                }
            }
        }
        let next = out.next_forward_token().map(str::to_string);
        let moved = next.is_some() && next != t.token;
        let had = !out.events().is_empty();
        any |= had;
        if next.is_some() {
            t.token = next;
        }
        if !had || !moved {
            break;
        }
    }
    Ok(any)
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_ecs::types::{Container, TaskStopCode};

    fn task(stop: Option<TaskStopCode>, reason: &str, container: Container) -> Task {
        Task::builder()
            .task_arn("arn:aws:ecs:eu-west-3:1:task/c/0123abcd")
            .last_status("STOPPED")
            .set_stop_code(stop)
            .stopped_reason(reason)
            .containers(container)
            .build()
    }

    #[test]
    fn a_container_that_ran_gives_its_exit_code() {
        let t = task(
            Some(TaskStopCode::EssentialContainerExited),
            "Essential container in task exited",
            Container::builder().name("app").exit_code(2).build(),
        );
        let s = stopped(&t, "app");
        assert_eq!(s.exit_code, Some(2));
        assert_eq!(
            s.reason,
            "EssentialContainerExited: Essential container in task exited"
        );
    }

    #[test]
    fn a_task_that_failed_to_start_has_no_exit_code_and_says_why() {
        let t = task(
            Some(TaskStopCode::TaskFailedToStart),
            "CannotPullContainerError: pull image manifest has been retried 5 time(s)",
            Container::builder()
                .name("app")
                .reason("CannotPullContainerError: ref not found")
                .build(),
        );
        let s = stopped(&t, "app");
        assert_eq!(s.exit_code, None);
        assert!(s
            .reason
            .starts_with("TaskFailedToStart: CannotPullContainerError"));
        assert!(s
            .reason
            .contains("container app: CannotPullContainerError: ref not found"));
        // Another container's exit code is not the app's.
        let other = task(
            None,
            "",
            Container::builder().name("sidecar").exit_code(0).build(),
        );
        let s = stopped(&other, "app");
        assert_eq!(s.exit_code, None);
        assert_eq!(s.reason, "no reason given");
        assert_eq!(
            task_id("arn:aws:ecs:eu-west-3:1:task/c/0123abcd"),
            "0123abcd"
        );
    }
}
