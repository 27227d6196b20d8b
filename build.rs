//! Records the git commit hcctl is built from, for `hcctl --version`. Builds without git (a
//! source tarball, a Docker context without .git) take HCCTL_GIT_COMMIT from the environment, or
//! say "unknown".

use std::process::Command;

fn main() {
    let commit = std::env::var("HCCTL_GIT_COMMIT")
        .ok()
        .filter(|c| !c.is_empty())
        .or_else(|| {
            let out = Command::new("git")
                .args(["rev-parse", "--short=12", "HEAD"])
                .output()
                .ok()?;
            let hash = String::from_utf8(out.stdout).ok()?.trim().to_string();
            if !out.status.success() || hash.is_empty() {
                return None;
            }
            let dirty = Command::new("git")
                .args(["status", "--porcelain", "--untracked-files=no"])
                .output()
                .ok()
                .is_some_and(|o| !o.stdout.is_empty());
            Some(if dirty {
                format!("{hash}-modified")
            } else {
                hash
            })
        })
        .unwrap_or_else(|| "unknown".to_string());
    println!("cargo:rustc-env=HCCTL_GIT_COMMIT={commit}");
    println!("cargo:rerun-if-env-changed=HCCTL_GIT_COMMIT");
    for path in [".git/HEAD", ".git/logs/HEAD", ".git/index"] {
        if std::path::Path::new(path).exists() {
            println!("cargo:rerun-if-changed={path}");
        }
    }
}
