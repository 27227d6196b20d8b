//! The command line itself: help, usage errors and their exit codes.

use crate::util::*;
use std::process::Command;

fn hcctl(args: &[&str]) -> std::process::Output {
    Command::new(HCCTL).args(args).output().unwrap()
}

#[test]
fn help_explains_every_migrate_flag() {
    let out = hcctl(&["migrate", "--help"]);
    assert_success(&out);
    let help = stdout(&out);
    for flag in [
        "--uri",
        "--db",
        "--collection",
        "--batch-size",
        "--workers",
        "--dry-run",
        "--report",
        "--quarantine",
        "--connect-timeout",
        "--format",
        "HCCTL_MONGODB_URI",
    ] {
        assert!(help.contains(flag), "{flag} missing from migrate --help");
    }
    assert!(hcctl(&["--help"]).status.success());
    assert!(stdout(&hcctl(&["--version"])).starts_with("hcctl "));
}

#[test]
fn help_never_shows_the_uri_from_the_environment() {
    let out = Command::new(HCCTL)
        .args(["migrate", "--help"])
        .env("HCCTL_MONGODB_URI", "mongodb://u:topsecret@h/")
        .output()
        .unwrap();
    assert!(!stdout(&out).contains("topsecret"));
}

#[test]
fn usage_errors_exit_2() {
    assert_exit(&hcctl(&["migrate", "--batch-size", "0", "x.csv"]), 2);
    assert_exit(&hcctl(&["migrate", "--no-such-flag"]), 2);
    let missing = hcctl(&[
        "migrate",
        "/nonexistent/file.csv",
        "--uri",
        "mongodb://127.0.0.1:9",
    ]);
    assert_exit(&missing, 2);
    assert!(stderr(&missing).contains("cannot open /nonexistent/file.csv: no such file"));
    // With --format json, the failure is a JSON object on stdout as well.
    let json = hcctl(&["migrate", "/nonexistent/file.csv", "--format", "json"]);
    assert_exit(&json, 2);
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(v["exit_code"], 2);
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .contains("cannot open /nonexistent/file.csv"),
        "{v}"
    );
    let empty = tempfile::NamedTempFile::new().unwrap();
    let out = hcctl(&["migrate", empty.path().to_str().unwrap(), "--dry-run"]);
    assert_exit(&out, 2);
    assert!(stderr(&out).contains("is empty"), "{}", stderr(&out));
}

#[test]
fn generate_is_deterministic_and_writes_to_stdout() {
    let a = hcctl(&["generate", "--rows", "50", "--seed", "1"]);
    let b = hcctl(&["generate", "--rows", "50", "--seed", "1"]);
    assert_success(&a);
    assert_eq!(a.stdout, b.stdout);
    assert_eq!(
        String::from_utf8_lossy(&a.stdout).matches("\r\n").count(),
        51
    );
    assert!(stdout(&a).starts_with(HEADER));
}

#[test]
fn version_names_the_git_commit() {
    let out = hcctl(&["--version"]);
    assert_success(&out);
    let v = stdout(&out);
    assert!(
        v.starts_with(&format!("hcctl {} (commit ", env!("CARGO_PKG_VERSION"))),
        "{v}"
    );
    let commit = v
        .trim()
        .trim_end_matches(')')
        .rsplit(' ')
        .next()
        .unwrap_or("");
    let hash = commit.trim_end_matches("-modified");
    assert!(
        hash == "unknown" || (hash.len() == 12 && hash.chars().all(|c| c.is_ascii_hexdigit())),
        "{v}"
    );
}

#[test]
fn completions_for_bash_zsh_and_fish_name_the_commands() {
    for (shell, marker) in [
        ("bash", "_hcctl()"),
        ("zsh", "#compdef hcctl"),
        ("fish", "complete -c hcctl"),
    ] {
        let out = hcctl(&["completions", shell]);
        assert_success(&out);
        let script = stdout(&out);
        assert!(
            script.contains(marker),
            "{shell}: {}",
            &script[..script.len().min(200)]
        );
        for cmd in ["migrate", "deploy", "backup-status", "users"] {
            assert!(script.contains(cmd), "{shell} completion lacks {cmd}");
        }
    }
    assert_exit(&hcctl(&["completions", "powershell-ish"]), 2);
}

#[test]
fn every_command_has_help() {
    for cmd in [
        &["deploy"][..],
        &["destroy"],
        &["render"],
        &["cost"],
        &["backup-status"],
        &["backup", "run"],
        &["users", "add"],
        &["users", "verify"],
        &["db-users", "apply"],
        &["completions"],
    ] {
        let mut args = cmd.to_vec();
        args.push("--help");
        let out = hcctl(&args);
        assert_success(&out);
        assert!(stdout(&out).contains("Usage: hcctl"), "{cmd:?}");
    }
}

/// Ctrl-C (SIGINT) and SIGTERM end a run at once with 130 / 143 and one line, even while hcctl is
/// blocked reading its input.
#[test]
fn interrupt_and_terminate_exit_130_and_143_with_one_line() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    for (signal, code) in [("-INT", 130), ("-TERM", 143)] {
        let quarantine = dir.path().join(format!("q{code}.csv"));
        let mut child = hcctl_in(
            dir.path(),
            &[
                "migrate",
                "-",
                "--dry-run",
                "--quarantine",
                quarantine.to_str().unwrap(),
            ],
        )
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        writeln!(stdin, "{HEADER}\n{}", row_with(&[])).unwrap();
        stdin.flush().unwrap();
        // The quarantine is started once the header is read: hcctl now waits for more input
        // (its signal handlers were installed before it started working).
        let partial = dir.path().join(format!("q{code}.csv.partial"));
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while !partial.exists() {
            assert!(
                std::time::Instant::now() < deadline,
                "hcctl never read the header"
            );
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let kill = Command::new("kill")
            .args([signal, &child.id().to_string()])
            .status()
            .unwrap();
        assert!(kill.success());
        let out = child.wait_with_output().unwrap();
        drop(stdin);
        assert_exit(&out, code);
        let err = stderr(&out);
        assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
        assert!(
            err.contains("interrupted; running the same command again is safe"),
            "{err}"
        );
        assert!(!partial.exists() && !quarantine.exists());
    }
}

#[test]
fn an_output_that_is_the_input_is_refused_and_the_input_kept() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("rows.csv");
    let text = format!("{HEADER}\n{}\n", row_with(&[]));
    std::fs::write(&input, &text).unwrap();
    let input_arg = input.to_str().unwrap();
    // The same file through another spelling and through a hard link.
    let spelled = format!("{}/./rows.csv", dir.path().display());
    let linked = dir.path().join("link.csv");
    std::fs::hard_link(&input, &linked).unwrap();
    for (flag, path) in [
        ("--quarantine", spelled.as_str()),
        ("--report", linked.to_str().unwrap()),
    ] {
        let out = hcctl(&["migrate", input_arg, "--dry-run", flag, path]);
        assert_exit(&out, 2);
        assert!(
            stderr(&out).contains(&format!("{flag} {path} is the input file itself")),
            "{}",
            stderr(&out)
        );
        assert_eq!(std::fs::read_to_string(&input).unwrap(), text);
    }
    let out = hcctl(&["verify", input_arg, "--report", &spelled]);
    assert_exit(&out, 2);
    assert_eq!(std::fs::read_to_string(&input).unwrap(), text);

    // An output in a directory that does not exist is found before the run, not after it.
    for flag in ["--report", "--quarantine"] {
        let out = hcctl(&[
            "migrate",
            input_arg,
            "--dry-run",
            flag,
            "/nonexistent/out.json",
        ]);
        assert_exit(&out, 2);
        assert!(
            stderr(&out).contains(&format!(
                "{flag} /nonexistent/out.json: the directory /nonexistent does not exist"
            )),
            "{}",
            stderr(&out)
        );
    }

    let same = dir.path().join("out.json");
    let same = same.to_str().unwrap();
    let out = hcctl(&[
        "migrate",
        input_arg,
        "--dry-run",
        "--quarantine",
        same,
        "--report",
        same,
    ]);
    assert_exit(&out, 2);
    assert!(
        stderr(&out).contains("--report and --quarantine name the same file"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn devices_as_outputs_are_written_without_touching_their_mode() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("rows.csv");
    std::fs::write(&input, format!("{HEADER}\n{}\nbad\n", row_with(&[]))).unwrap();
    let mode = || std::fs::metadata("/dev/null").unwrap().permissions().mode() & 0o777;
    let before = mode();
    let out = hcctl(&[
        "migrate",
        input.to_str().unwrap(),
        "--dry-run",
        "--quarantine",
        "/dev/null",
        "--report",
        "/dev/null",
    ]);
    assert_success(&out);
    assert_eq!(mode(), before, "/dev/null's mode was changed");
    // Through the system's own links too: /dev/stdout is the pipe this test reads.
    let out = hcctl(&[
        "migrate",
        input.to_str().unwrap(),
        "--dry-run",
        "--quarantine",
        "/dev/null",
        "--report",
        "/dev/stdout",
    ]);
    assert_success(&out);
    assert!(
        stdout(&out).contains("\"rows_read\": 2"),
        "{}",
        stdout(&out)
    );
}
