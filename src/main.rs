//! hcctl's entry point: parse the command line, set up logging, run one command, map the
//! outcome to a documented exit code. The work lives in the library (`src/lib.rs`).

use std::io::{self, IsTerminal, Write};

use clap::{CommandFactory, FromArgMatches};

use hcctl::backup;
use hcctl::cli::{
    BackupCommand, Cli, Command, DbUsersCommand, Format, GenerateArgs, IngestArgs, IngestCommand,
    RunCommand, UsersCommand,
};
use hcctl::deploy::{self, plan::Plan};
use hcctl::error::Error;
use hcctl::ingest;
use hcctl::logging;
use hcctl::migrate::{self, outfile};
use hcctl::output;
use hcctl::security;

fn main() {
    let matches = Cli::command().get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    // `hcctl run`: the job's arguments as typed, for the task's command.
    let task_args = hcctl::cli::task_arguments(&matches);
    let log_format =
        match logging::LogFormat::parse(std::env::var(logging::FORMAT_VARIABLE).ok().as_deref()) {
            Ok(f) => f,
            Err(e) => {
                eprintln!("hcctl: error: {e}");
                std::process::exit(2);
            }
        };
    logging::init(cli.verbose, log_format, &command_name(&matches));
    let json = json_errors(&cli.command);
    // The runtime lives until the process exits: it is never torn down, because the MongoDB
    // driver's background tasks can panic when they are dropped in the wrong order ("SendError"
    // in its connection pool), printing a backtrace after a successful run. Everything hcctl
    // writes is already flushed by then (quarantine, report, documents the server acknowledged).
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build();
    let result = match &runtime {
        Ok(rt) => {
            exit_on_signal(rt);
            rt.block_on(run(cli.command, task_args))
        }
        Err(e) => Err(Error::failed(format!(
            "cannot start the async runtime: {e}"
        ))),
    };
    let code = match &result {
        Ok(()) => 0,
        Err(e) => {
            if let Some(kind) = json {
                emit_json_error(e, kind);
            }
            logging::finish(e.code(), Some(&e.to_string()));
            e.code()
        }
    };
    if code == 0 {
        logging::finish(0, None);
    }
    let _ = io::stdout().flush();
    let _ = io::stderr().flush();
    std::process::exit(i32::from(code));
}

/// "migrate", "backup dump", "ingest status": the command as typed, for the log's lines.
fn command_name(matches: &clap::ArgMatches) -> String {
    let mut names = Vec::new();
    let mut m = matches;
    while let Some((name, sub)) = m.subcommand() {
        names.push(name);
        m = sub;
    }
    names.join(" ")
}

/// Ctrl-C or SIGTERM (what ECS sends a task it stops): say what state things are in and exit
/// 130 / 143 at once. The quarantine and report being written are removed (a cut-off list of
/// rejected rows would pass for a whole one); nothing else needs undoing: temporary sort files
/// are already unlinked, every document written so far is complete, and every command converges
/// when run again. The handlers are installed before any work starts, so no signal is missed;
/// the waiting task runs on a worker thread, so it answers even while the main thread is blocked
/// reading the input.
fn exit_on_signal(rt: &tokio::runtime::Runtime) {
    let _context = rt.enter();
    let signalled = signal_waiter();
    rt.spawn(async move {
        let code = signalled.await;
        outfile::abandon_all();
        hcctl::ingest::release_active().await;
        hcctl::writes::release_all().await;
        if std::io::stderr().is_terminal() {
            eprintln!();
        }
        let note = output::interrupt_note().unwrap_or_else(|| {
            "running the same command again is safe and finishes the job (migrate, deploy and \
             db-users apply converge to the same end state)"
                .to_string()
        });
        logging::notice(
            tracing::Level::WARN,
            &format!("interrupted; {note}"),
            serde_json::json!({ "exit_code": code }),
        );
        std::process::exit(code);
    });
}

type Waiter = std::pin::Pin<Box<dyn std::future::Future<Output = i32> + Send>>;

/// Installs the handlers now; the future ends with the exit code when a signal comes.
#[cfg(unix)]
fn signal_waiter() -> Waiter {
    use tokio::signal::unix::{signal, SignalKind};
    // SIGHUP too (a dropped ssh session): like the others, it must not leave a partial output.
    match (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
        signal(SignalKind::hangup()),
    ) {
        (Ok(mut int), Ok(mut term), Ok(mut hup)) => Box::pin(async move {
            tokio::select! {
                _ = int.recv() => 130,
                _ = term.recv() => 143,
                _ = hup.recv() => 129,
            }
        }),
        // No handler could be installed: keep the default behaviour (the signal ends the process).
        _ => Box::pin(std::future::pending()),
    }
}

#[cfg(not(unix))]
fn signal_waiter() -> Waiter {
    Box::pin(async {
        match tokio::signal::ctrl_c().await {
            Ok(()) => 130,
            Err(_) => std::future::pending().await,
        }
    })
}

async fn run(
    command: Command,
    task_args: Option<Result<Vec<String>, String>>,
) -> Result<(), Error> {
    match command {
        Command::Run(cmd) => {
            let args = match task_args {
                Some(Ok(args)) => args,
                Some(Err(e)) => return Err(Error::usage(e)),
                None => return Err(Error::usage("hcctl run: no job to run")),
            };
            run_in_the_cloud(cmd, args).await
        }
        Command::Migrate(args) => {
            let report = migrate::migrate(&args).await?;
            logging::set_figures(serde_json::json!({
                "source": report.source,
                "database": report.database,
                "collection": report.collection,
                "dry_run": report.dry_run,
                "rows_read": report.rows_read,
                "inserted": report.inserted,
                "duplicates": report.duplicates,
                "rejected": report.rejected,
                "rejected_share": logging::share(report.rejected, report.rows_read),
            }));
            emit(&report, args.format)
        }
        Command::Verify(args) => {
            let report = migrate::verify::verify(&args).await?;
            logging::set_figures(serde_json::json!({
                "source": report.source,
                "database": report.database,
                "collection": report.collection,
                "rows_read": report.rows_read,
                "rejected": report.rejected,
                "checked": report.checked,
                "missing": report.missing,
                "different": report.different,
                "extra": report.extra,
            }));
            emit(&report, args.format)?;
            if report.ok {
                Ok(())
            } else {
                Err(Error::Differences(format!(
                    "{} missing, {} different, {} extra document(s) in {}.{}",
                    report.missing,
                    report.different,
                    report.extra,
                    report.database,
                    report.collection
                )))
            }
        }
        Command::Generate(args) => generate(&args),
        Command::Ingest(args) => ingest_command(args).await,
        Command::Deploy(args) => {
            let settings = deploy::Settings {
                config_path: args.aws.config.clone(),
                endpoint_url: args.aws.endpoint_url.clone(),
            };
            let wait = (!args.no_wait).then_some(args.wait_timeout);
            let plan = deploy::deploy(&settings, args.dry_run, args.strict, wait, |p| {
                show_plan(p, args.format)
            })
            .await?;
            finish_plan(&plan, args.format)
        }
        Command::Destroy(args) => {
            let settings = deploy::Settings {
                config_path: args.aws.config.clone(),
                endpoint_url: args.aws.endpoint_url.clone(),
            };
            let plan = deploy::destroy(
                &settings,
                args.yes,
                args.delete_data.as_deref(),
                args.dry_run,
                |p| show_plan(p, args.format),
            )
            .await?;
            finish_plan(&plan, args.format)
        }
        Command::BackupStatus(args) => {
            let status = backup::status_command(
                &args.aws.config,
                args.aws.endpoint_url.clone(),
                args.max_age,
                args.jobs,
                args.now,
            )
            .await?;
            match args.format {
                Format::Text => {
                    let text = status.render(backup::status::use_colour());
                    write_stdout(&text)?;
                }
                Format::Json => emit_json(&status)?,
            }
            if status.healthy {
                Ok(())
            } else {
                Err(Error::Unhealthy(format!(
                    "backups unhealthy: {}",
                    status.reasons.join("; ")
                )))
            }
        }
        Command::Backup(BackupCommand::Audit(args)) => {
            let audit =
                backup::audit_command(&args.aws.config, args.aws.endpoint_url.clone(), args.now)
                    .await?;
            match args.format {
                Format::Text => write_stdout(&audit.to_string())?,
                Format::Json => emit_json(&audit)?,
            }
            if audit.failed > 0 {
                Err(Error::Unhealthy(audit.verdict()))
            } else {
                Ok(())
            }
        }
        Command::Backup(BackupCommand::Run(args)) => {
            let wait = args.wait.then_some(args.timeout);
            let report = backup::run_command(
                &args.aws.config,
                args.aws.endpoint_url.clone(),
                &args.resources,
                wait,
            )
            .await?;
            emit(&report, args.format)?;
            if args.wait && !report.ok {
                let states: Vec<String> = report
                    .jobs
                    .iter()
                    .map(|j| format!("{} {}", j.id, j.state))
                    .collect();
                return Err(Error::failed(format!(
                    "backup job(s) did not complete: {}",
                    states.join(", ")
                )));
            }
            Ok(())
        }
        Command::Backup(BackupCommand::Dump(args)) => {
            let to = backup::dump::Place::parse(&args.to)?;
            let report = backup::dump::dump(
                &args.server,
                &to,
                args.writers_wait,
                args.sse_kms_key_id.as_deref(),
            )
            .await?;
            logging::set_figures(serde_json::json!({
                "dump": report.dump,
                "database": report.manifest.database,
                "collections": report.manifest.collections.len(),
                "documents": report.manifest.collections.iter().map(|c| c.documents).sum::<u64>(),
            }));
            emit(&report, args.format)
        }
        Command::Backup(BackupCommand::Load(args)) => {
            let dump = backup::dump::dump_place(&args.dump)?;
            let replace = args.drop.then_some(args.writers_wait);
            let report = backup::dump::load(&args.server, &dump, replace).await?;
            logging::set_figures(serde_json::json!({
                "dump": report.dump,
                "database": report.database,
                "collections": report.collections.len(),
                "documents": report.documents,
            }));
            emit(&report, args.format)
        }
        Command::Backup(BackupCommand::Drill(args)) => {
            let mut report = backup::drill::drill(&args).await?;
            if let Some(at) = &args.report {
                let stored =
                    backup::drill::store(&report, at, args.sse_kms_key_id.as_deref()).await?;
                tracing::info!(report = %stored, "drill report stored");
                report.stored = Some(stored);
            }
            logging::set_figures(serde_json::json!({
                "dump": report.dump,
                "database": report.database,
                "ok": report.ok,
                "rpo_seconds": report.rpo_seconds,
                "rto_seconds": report.rto_seconds,
            }));
            emit(&report, args.format)?;
            if report.ok {
                Ok(())
            } else {
                Err(Error::Unhealthy(format!(
                    "the restore drill failed: {}",
                    report.problems.join("; ")
                )))
            }
        }
        Command::Users(cmd) => users(cmd).await,
        Command::Completions(args) => {
            use clap::CommandFactory;
            let mut script = Vec::new();
            clap_complete::generate(args.shell, &mut Cli::command(), "hcctl", &mut script);
            write_stdout(&String::from_utf8_lossy(&script))
        }
        Command::DbUsers(cmd) => db_users(cmd).await,
        Command::IamPolicy(args) => {
            let text = deploy::iam_policy_command(
                &args.aws.config,
                args.aws.endpoint_url.clone(),
                args.account_id.clone(),
                args.format == Format::Json,
            )
            .await?;
            write_stdout(&text)
        }
        Command::Logs(args) => logs(args).await,
        Command::Status(args) => {
            let ledger = args
                .ledger
                .then_some((&args.server, args.ledger_collection.as_str()));
            let status = hcctl::monitor::status::status(
                &args.aws.config,
                args.aws.endpoint_url.clone(),
                ledger,
            )
            .await?;
            match args.format {
                Format::Text => write_stdout(&status.to_string())?,
                Format::Json => emit_json(&status)?,
            }
            if status.healthy {
                Ok(())
            } else {
                Err(Error::Unhealthy(format!(
                    "needs attention: {}",
                    status.attention.join("; ")
                )))
            }
        }
        Command::Cost(args) => {
            let estimate = hcctl::cost::command(&hcctl::cost::Request {
                config_path: args.config.clone(),
                prices: args.prices.clone(),
                sets: args.sets.clone(),
            })
            .await?;
            match args.format {
                Format::Json => emit_json(&estimate),
                Format::Text => write_stdout(&estimate.to_string()),
            }
        }
        Command::Render(args) => {
            let all = deploy::render_command(&args.config).await?;
            let value = match &args.container {
                Some(c) => all.get(c).cloned().unwrap_or_default(),
                None => all,
            };
            emit_json(&value)
        }
    }
}

/// `hcctl run migrate|verify`: start, follow (log lines and progress on stderr), then the
/// result on stdout and the containers' exit code as hcctl's.
async fn run_in_the_cloud(cmd: RunCommand, args: Vec<String>) -> Result<(), Error> {
    use hcctl::run::{self, Job, Request};
    let (job, input, report, quarantine, task, format) = match cmd {
        RunCommand::Migrate(a) => (
            Job::Migrate,
            a.migrate.path,
            a.migrate.report,
            a.migrate.quarantine,
            a.task,
            a.migrate.format,
        ),
        RunCommand::Verify(a) => (
            Job::Verify,
            a.verify.path,
            a.verify.report,
            None,
            a.task,
            a.verify.format,
        ),
    };
    let request = Request {
        config_path: task.aws.config.clone(),
        endpoint_url: task.aws.endpoint_url.clone(),
        job,
        args,
        input,
        report,
        quarantine,
        tasks: task.tasks,
        wait: (!task.no_wait).then_some(task.timeout),
    };
    let progress = |text: &str| eprintln!("hcctl: {text}");
    let line = |text: &str| eprintln!("{text}");
    let started = |r: &run::RunResult| {
        let arns: Vec<&str> = r.tasks.iter().map(|t| t.task_arn.as_str()).collect();
        output::set_interrupt_note(format!(
            "the task(s) keep running without hcctl: {} (stop them with aws ecs stop-task \
             --cluster {} --task ARN; their reports appear in S3 when they end)",
            arns.join(", "),
            r.cluster
        ));
    };
    let result = run::run(&request, &progress, &line, &started).await?;
    match format {
        Format::Json => emit_json(&result)?,
        Format::Text if request.wait.is_none() => write_stdout(
            &result
                .tasks
                .iter()
                .map(|t| format!("{}\n", t.task_arn))
                .collect::<String>(),
        )?,
        Format::Text => emit(&result, format)?,
    }
    match (result.exit_code, result.error) {
        (0, _) => Ok(()),
        (code, error) => Err(Error::Exit(
            code,
            error.unwrap_or_else(|| format!("the task exited with code {code}")),
        )),
    }
}

async fn users(cmd: UsersCommand) -> Result<(), Error> {
    use security::app_users::Users;
    use security::passwords::{self, Source};
    let source = |stdin: bool| {
        if stdin {
            Source::Stdin
        } else {
            Source::Terminal
        }
    };
    match cmd {
        UsersCommand::Add(a) => {
            security::app_users::check_name(&a.name)?;
            let pw = passwords::read(source(a.password_stdin), "New password: ", true)?;
            passwords::check_policy(&pw)?;
            let conn = hcctl::mongo::connect(&a.server).await?;
            Users::open(&conn.db)
                .await?
                .add(&a.name, a.role, &pw)
                .await?;
            write_stdout(&format!(
                "user {} added with role {}\n",
                a.name,
                a.role.as_str()
            ))
        }
        UsersCommand::Verify(a) => {
            let pw = passwords::read(source(a.password_stdin), "Password: ", false)?;
            let conn = hcctl::mongo::connect(&a.server).await?;
            if Users::open(&conn.db).await?.verify(&a.name, &pw).await? {
                write_stdout(&format!("user {}: password OK\n", a.name))
            } else {
                Err(Error::failed("wrong user name or password"))
            }
        }
        UsersCommand::Passwd(a) => {
            let pw = passwords::read(source(a.password_stdin), "New password: ", true)?;
            passwords::check_policy(&pw)?;
            let conn = hcctl::mongo::connect(&a.server).await?;
            Users::open(&conn.db).await?.passwd(&a.name, &pw).await?;
            write_stdout(&format!("user {}: password changed\n", a.name))
        }
        UsersCommand::Remove(a) => {
            let conn = hcctl::mongo::connect(&a.server).await?;
            Users::open(&conn.db).await?.remove(&a.name).await?;
            write_stdout(&format!("user {} removed\n", a.name))
        }
        UsersCommand::List(a) => {
            let conn = hcctl::mongo::connect(&a.server).await?;
            let list = Users::open(&conn.db).await?.list().await?;
            match a.format {
                Format::Json => emit_json(&list),
                Format::Text => {
                    let mut text = String::new();
                    for u in &list {
                        text.push_str(&format!(
                            "{:<24} {:<8} {}\n",
                            u.name, u.role, u.hash_algorithm
                        ));
                    }
                    write_stdout(&text)
                }
            }
        }
    }
}

async fn db_users(cmd: DbUsersCommand) -> Result<(), Error> {
    use security::db_users;
    match cmd {
        DbUsersCommand::Apply(a) => {
            let config = hcctl::config::Config::load(&a.config)?;
            let Some(spec) = &config.database else {
                return Err(Error::usage(format!(
                    "{}: no `database` section (name, accounts) to apply",
                    a.config.display()
                )));
            };
            let report = db_users::apply_command(&a.server, spec).await?;
            emit(&report, a.format)
        }
        DbUsersCommand::List(a) => {
            let users = db_users::list_command(&a.server, &a.server.db).await?;
            match a.format {
                Format::Json => emit_json(&users),
                Format::Text => {
                    let mut text = String::new();
                    for u in &users {
                        text.push_str(&format!(
                            "{:<16} {:<12} {}\n",
                            u.name,
                            u.db,
                            u.roles.join(", ")
                        ));
                    }
                    write_stdout(&text)
                }
            }
        }
    }
}

/// Text: the plan goes out before anything is applied.
fn show_plan(plan: &Plan, format: Format) {
    if format == Format::Text {
        let mut out = io::stdout().lock();
        let _ = write!(out, "{plan}");
        let _ = out.flush();
    }
}

/// After apply: the results (text) or the whole plan with results (JSON); exit 1 on a failed step.
fn finish_plan(plan: &Plan, format: Format) -> Result<(), Error> {
    let written = match format {
        Format::Text => {
            let mut out = io::stdout().lock();
            write!(out, "{}", plan.outcome_text()).and_then(|()| out.flush())
        }
        Format::Json => return_json(plan),
    };
    if let Err(e) = written {
        if e.kind() != io::ErrorKind::BrokenPipe {
            return Err(Error::failed(format!("writing to stdout: {e}")));
        }
    }
    match plan.outcome.as_ref().and_then(|o| o.error.as_ref()) {
        Some(e) => Err(Error::failed(format!(
            "{} did not finish: {e}",
            plan.command
        ))),
        None => Ok(()),
    }
}

fn write_stdout(text: &str) -> Result<(), Error> {
    let mut out = io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() != io::ErrorKind::BrokenPipe => {
            Err(Error::failed(format!("writing to stdout: {e}")))
        }
        _ => Ok(()),
    }
}

fn return_json<T: serde::Serialize>(value: &T) -> io::Result<()> {
    let mut out = io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, value).map_err(io::Error::from)?;
    writeln!(out)?;
    out.flush()
}

fn emit_json<T: serde::Serialize>(value: &T) -> Result<(), Error> {
    JSON_WRITTEN.store(true, std::sync::atomic::Ordering::SeqCst);
    match return_json(value) {
        Err(e) if e.kind() != io::ErrorKind::BrokenPipe => {
            Err(Error::failed(format!("writing to stdout: {e}")))
        }
        _ => Ok(()),
    }
}

/// Set once a command has written its JSON result: an error after that (verify's differences,
/// an unhealthy backup status) must not add a second object to stdout.
static JSON_WRITTEN: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// How a failed command answers with `--format json`.
#[derive(Debug, Clone, Copy)]
enum JsonError {
    /// backup-status: the verdict's shape (`healthy`, `reasons`), so monitoring reads one shape.
    Status,
    Plain,
}

fn json_errors(command: &Command) -> Option<JsonError> {
    let format = match command {
        Command::Migrate(a) => a.format,
        Command::Verify(a) => a.format,
        Command::Ingest(a) => match &a.command {
            Some(IngestCommand::Status(s)) => s.format,
            Some(IngestCommand::Retry(_)) => Format::Text,
            None => a.load.format,
        },
        Command::Deploy(a) => a.format,
        Command::Destroy(a) => a.format,
        Command::BackupStatus(a) => {
            return (a.format == Format::Json).then_some(JsonError::Status);
        }
        Command::Backup(BackupCommand::Run(a)) => a.format,
        Command::Backup(BackupCommand::Audit(a)) => a.format,
        Command::Backup(BackupCommand::Dump(a)) => a.format,
        Command::Backup(BackupCommand::Load(a)) => a.format,
        Command::Backup(BackupCommand::Drill(a)) => a.format,
        Command::Run(RunCommand::Migrate(a)) => a.migrate.format,
        Command::Run(RunCommand::Verify(a)) => a.verify.format,
        Command::Users(UsersCommand::List(a)) => a.format,
        Command::DbUsers(DbUsersCommand::Apply(a)) => a.format,
        Command::DbUsers(DbUsersCommand::List(a)) => a.format,
        Command::Status(a) => {
            return (a.format == Format::Json).then_some(JsonError::Status);
        }
        Command::Logs(a) => a.format,
        _ => return None,
    };
    (format == Format::Json).then_some(JsonError::Plain)
}

/// With `--format json`, a failure before any result is still one JSON object on stdout
/// (`error`, `exit_code`; for backup-status also `healthy: false` and `reasons`), besides the
/// line on stderr.
fn emit_json_error(e: &Error, kind: JsonError) {
    if JSON_WRITTEN.load(std::sync::atomic::Ordering::SeqCst) {
        return;
    }
    let message = e.to_string();
    let value = match kind {
        JsonError::Status => serde_json::json!({
            "healthy": false,
            "reasons": [message],
            "error": message,
            "exit_code": e.code(),
        }),
        JsonError::Plain => serde_json::json!({ "error": message, "exit_code": e.code() }),
    };
    let _ = emit_json(&value);
}

/// Print a result on stdout as text or JSON. A closed pipe (`| head`) is not an error.
fn emit<T: serde::Serialize + std::fmt::Display>(value: &T, format: Format) -> Result<(), Error> {
    let mut out = io::stdout().lock();
    if format == Format::Json {
        JSON_WRITTEN.store(true, std::sync::atomic::Ordering::SeqCst);
    }
    let written = match format {
        Format::Text => write!(out, "{value}"),
        Format::Json => serde_json::to_writer_pretty(&mut out, value)
            .map_err(io::Error::from)
            .and_then(|()| writeln!(out)),
    };
    match written.and_then(|()| out.flush()) {
        Err(e) if e.kind() != io::ErrorKind::BrokenPipe => {
            Err(Error::failed(format!("writing to stdout: {e}")))
        }
        _ => Ok(()),
    }
}

/// `hcctl ingest SOURCE`, `ingest status`, `ingest retry FILE`.
async fn ingest_command(args: IngestArgs) -> Result<(), Error> {
    match args.command {
        Some(IngestCommand::Status(a)) => {
            let status = ingest::status(&a.server, &a.ledger.ledger).await?;
            emit(&status, a.format)?;
            if status.parked > 0 {
                return Err(Error::Unhealthy(format!(
                    "{} file(s) parked after {} failed attempts: fix the cause, then `hcctl ingest \
                     retry FILE`",
                    status.parked,
                    ingest::ledger::MAX_ATTEMPTS
                )));
            }
            Ok(())
        }
        Some(IngestCommand::Retry(a)) => {
            let n = ingest::retry(&a.server, &a.ledger.ledger, &a.file).await?;
            println!(
                "{}: attempts reset ({n} ledger entr{}); the next ingest run loads it",
                a.file,
                if n == 1 { "y" } else { "ies" }
            );
            Ok(())
        }
        None => {
            let load = args.load;
            let (format, watch) = (load.format, load.watch);
            let report = ingest::ingest(&load, |outcome| {
                log_file_outcome(outcome);
                let mut out = io::stdout().lock();
                let _ = match format {
                    Format::Text => writeln!(out, "{outcome}"),
                    // --watch never ends with a summary of its own: one JSON object per file.
                    Format::Json if watch => serde_json::to_writer(&mut out, outcome)
                        .map_err(io::Error::from)
                        .and_then(|()| writeln!(out)),
                    Format::Json => Ok(()),
                };
                let _ = out.flush();
            })
            .await?;
            logging::set_figures(serde_json::json!({
                "source": report.source,
                "database": report.database,
                "collection": report.collection,
                "files_seen": report.files_seen,
                "files_ingested": report.files_ingested,
                "files_skipped": report.files_skipped,
                "files_failed": report.files_failed,
                "rows_read": report.rows_read,
                "inserted": report.inserted,
                "duplicates": report.duplicates,
                "rejected": report.rejected,
                "rejected_share": logging::share(report.rejected, report.rows_read),
            }));
            emit(&report, format)?;
            if report.files_failed > 0 {
                return Err(Error::failed(format!(
                    "{} of {} file(s) failed; the others are loaded, and the next run retries \
                     the failed ones (`hcctl ingest status` shows why)",
                    report.files_failed, report.files_seen
                )));
            }
            Ok(())
        }
    }
}

/// `hcctl logs`: each line on stdout as it comes (a closed pipe ends the command quietly).
async fn logs(args: hcctl::cli::LogsArgs) -> Result<(), Error> {
    use hcctl::monitor::logs::{self, Line, Request};
    let request = Request {
        config_path: args.aws.config.clone(),
        endpoint_url: args.aws.endpoint_url.clone(),
        container: args.container.clone(),
        since: args.since,
        filter: args.filter.clone(),
        task: args.task.clone(),
        follow: args.follow,
    };
    if args.follow {
        output::set_interrupt_note("stopped following the log".to_string());
    }
    let format = args.format;
    let mut print = |line: &Line| {
        let mut out = io::stdout().lock();
        let written = match format {
            Format::Text => writeln!(out, "{}", logs::text(line)),
            Format::Json => serde_json::to_writer(&mut out, line)
                .map_err(io::Error::from)
                .and_then(|()| writeln!(out)),
        }
        .and_then(|()| out.flush());
        match written {
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => std::process::exit(0),
            Err(e) => Err(Error::failed(format!("writing to stdout: {e}"))),
            Ok(()) => Ok(()),
        }
    };
    let note = |text: &str| eprintln!("hcctl: {text}");
    logs::logs(&request, &mut print, &note).await
}

/// One event per file an ingest loaded or failed (with `--watch`, the run's only figures).
fn log_file_outcome(outcome: &ingest::FileOutcome) {
    match &outcome.report {
        Some(r) => tracing::info!(
            file = %outcome.file,
            attempt = outcome.attempt,
            rows_read = r.rows_read,
            inserted = r.inserted,
            duplicates = r.duplicates,
            rejected = r.rejected,
            rejected_share = logging::share(r.rejected, r.rows_read),
            elapsed_seconds = r.elapsed_seconds,
            "file ingested"
        ),
        None => tracing::error!(
            file = %outcome.file,
            attempt = outcome.attempt,
            error = outcome.error.as_deref().unwrap_or("?"),
            "file failed"
        ),
    }
}

fn generate(args: &GenerateArgs) -> Result<(), Error> {
    let result = if args.output == "-" {
        migrate::generate::generate(args.rows, args.seed, io::stdout().lock())
    } else {
        let file = std::fs::File::create(&args.output).map_err(|e| {
            Error::usage(format!(
                "cannot create {}: {}",
                args.output,
                migrate::read::io_reason(&e)
            ))
        })?;
        if args.output.ends_with(".gz") {
            let gz = flate2::write::GzEncoder::new(file, flate2::Compression::fast());
            migrate::generate::generate(args.rows, args.seed, gz)
        } else {
            migrate::generate::generate(args.rows, args.seed, file)
        }
    };
    match result {
        Err(e) if e.kind() != io::ErrorKind::BrokenPipe => {
            Err(Error::failed(format!("writing {}: {e}", args.output)))
        }
        _ => Ok(()),
    }
}
