//! The test harness: run the real `hcctl` binary against the real server named by
//! `HCCTL_TEST_MONGODB_URI` (or `HCCTL_MONGODB_URI`), each test in a database of its own.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

use bson::{doc, Document};
use futures_util::TryStreamExt;
use mongodb::Client;
use serde_json::Value;

/// A test that cannot exercise its subject on this server says so loudly: on stderr, and in
/// `$CARGO_TARGET_TMPDIR/not-applicable.txt`, which `scripts/test` prints at the end of the run.
pub fn not_applicable(test: &str, why: &str) {
    use std::io::Write;
    let msg = format!("NOT APPLICABLE: {test}: {why}");
    eprintln!("\n*** {msg} ***\n");
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let _ = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("not-applicable.txt"))
        .and_then(|mut f| writeln!(f, "{msg}"));
}

pub const HCCTL: &str = env!("CARGO_BIN_EXE_hcctl");

/// The server every integration test runs against. Never skipped: without it, tests fail and
/// say how to start one.
pub fn mongo_uri() -> String {
    std::env::var("HCCTL_TEST_MONGODB_URI")
        .or_else(|_| std::env::var("HCCTL_MONGODB_URI"))
        .unwrap_or_else(|_| {
            panic!(
                "integration tests need a MongoDB-compatible server: run `eval \"$(scripts/stack up)\"` \
                 (or set HCCTL_TEST_MONGODB_URI) before `cargo test`"
            )
        })
}

/// The real export: `HCCTL_DATASET`, else the copy CI has beside the clone.
pub fn real_dataset() -> PathBuf {
    let p = match std::env::var_os("HCCTL_DATASET") {
        Some(p) => PathBuf::from(p),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data/healthcare_dataset.csv"),
    };
    assert!(
        p.exists(),
        "the real dataset is expected at {} (CI provides it; set HCCTL_DATASET to use another \
         copy; see README)",
        p.display()
    );
    p
}

pub struct TestEnv {
    pub uri: String,
    pub db: String,
    pub dir: tempfile::TempDir,
    pub client: Client,
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

impl TestEnv {
    pub async fn new(name: &str) -> TestEnv {
        let uri = mongo_uri();
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let db = format!("t_{name}_{}_{n}", std::process::id());
        let client = Client::with_uri_str(&uri)
            .await
            .unwrap_or_else(|e| panic!("test client cannot parse the URI: {e}"));
        TestEnv {
            uri,
            db,
            dir: tempfile::tempdir().expect("temp dir"),
            client,
        }
    }

    /// Run hcctl with the test server's URI in its environment and the temp dir as cwd.
    pub fn run(&self, args: &[&str]) -> Output {
        self.command(args)
            .output()
            .unwrap_or_else(|e| panic!("cannot run {HCCTL}: {e}"))
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = hcctl_in(self.dir.path(), args);
        cmd.env("HCCTL_MONGODB_URI", &self.uri);
        cmd
    }

    /// `hcctl migrate PATH --db <test db> --collection COLL --report …` plus `extra`, not run
    /// yet (to add environment variables), and where its report will be.
    pub fn migrate_command(&self, path: &Path, coll: &str, extra: &[&str]) -> (Command, PathBuf) {
        let report = self.dir.path().join(format!("{coll}-report.json"));
        let mut args = vec![
            "migrate",
            path.to_str().expect("utf-8 path"),
            "--db",
            &self.db,
            "--collection",
            coll,
            "--report",
            report.to_str().expect("utf-8 path"),
        ];
        args.extend_from_slice(extra);
        (self.command(&args), report)
    }

    /// [`TestEnv::migrate_command`], run; asserts success and returns the parsed report.
    pub fn migrate(&self, path: &Path, coll: &str, extra: &[&str]) -> Value {
        let (mut cmd, report) = self.migrate_command(path, coll, extra);
        let out = cmd
            .output()
            .unwrap_or_else(|e| panic!("cannot run {HCCTL}: {e}"));
        assert_success(&out);
        read_json(&report)
    }

    pub fn write(&self, name: &str, content: impl AsRef<[u8]>) -> PathBuf {
        let p = self.dir.path().join(name);
        std::fs::write(&p, content).expect("write test file");
        p
    }

    pub fn generate(&self, name: &str, rows: u64, seed: u64) -> PathBuf {
        let p = self.dir.path().join(name);
        let out = self.run(&[
            "generate",
            "--rows",
            &rows.to_string(),
            "--seed",
            &seed.to_string(),
            "--output",
            p.to_str().expect("utf-8 path"),
        ]);
        assert_success(&out);
        p
    }

    pub fn coll(&self, name: &str) -> mongodb::Collection<Document> {
        self.client.database(&self.db).collection(name)
    }

    /// Every document of a collection, in _id order.
    pub async fn docs(&self, coll: &str) -> Vec<Document> {
        self.coll(coll)
            .find(doc! {})
            .sort(doc! { "_id": 1 })
            .await
            .expect("find")
            .try_collect()
            .await
            .expect("read documents")
    }

    pub async fn count(&self, coll: &str, filter: Document) -> u64 {
        self.coll(coll)
            .count_documents(filter)
            .await
            .expect("count")
    }

    /// The test's database holds no collection at all: nothing was written.
    pub async fn assert_nothing_written(&self) {
        let colls = self
            .client
            .database(&self.db)
            .list_collection_names()
            .await
            .expect("list collections");
        assert!(colls.is_empty(), "nothing written: {colls:?}");
    }

    pub async fn drop_db(self) {
        let _ = self.client.database(&self.db).drop().await;
    }
}

/// The built hcctl with `args`, run in `dir`, default log level, no standard input.
pub fn hcctl_in(dir: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(HCCTL);
    cmd.args(args)
        .current_dir(dir)
        .env_remove("HCCTL_LOG")
        .stdin(Stdio::null());
    cmd
}

pub fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn assert_success(out: &Output) {
    assert!(
        out.status.success(),
        "hcctl failed ({:?})\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        stdout(out),
        stderr(out)
    );
}

pub fn assert_exit(out: &Output, code: i32) {
    assert_eq!(
        out.status.code(),
        Some(code),
        "unexpected exit code\nstdout:\n{}\nstderr:\n{}",
        stdout(out),
        stderr(out)
    );
}

/// Report field as u64.
pub fn n(report: &Value, key: &str) -> u64 {
    report[key]
        .as_u64()
        .unwrap_or_else(|| panic!("report has no number {key}: {report}"))
}

/// The 15-column header and a valid row to vary.
pub const HEADER: &str = "Name,Age,Gender,Blood Type,Medical Condition,Date of Admission,Doctor,Hospital,Insurance Provider,Billing Amount,Room Number,Admission Type,Discharge Date,Medication,Test Results";
pub const ROW: [&str; 15] = [
    "Bobby JacksOn",
    "30",
    "Male",
    "B-",
    "Cancer",
    "2024-01-31",
    "Matthew Smith",
    "Sons and Miller",
    "Blue Cross",
    "18856.281305978155",
    "328",
    "Urgent",
    "2024-02-02",
    "Paracetamol",
    "Normal",
];

/// A CSV line: ROW with some columns replaced (values are written as given: quote them yourself).
pub fn row_with(overrides: &[(usize, &str)]) -> String {
    let mut f: Vec<&str> = ROW.to_vec();
    for &(i, v) in overrides {
        f[i] = v;
    }
    f.join(",")
}

/// The figures of a migration report that must agree between two runs of the same rows.
pub const MIGRATE_FIGURES: [&str; 5] = [
    "rows_read",
    "inserted",
    "duplicates",
    "rejected",
    "billing_nulled",
];

/// Create bucket `name` in eu-west-3 (the emulators' region).
pub async fn create_bucket(s3: &aws_sdk_s3::Client, name: &str) {
    s3.create_bucket()
        .bucket(name)
        .create_bucket_configuration(
            aws_sdk_s3::types::CreateBucketConfiguration::builder()
                .location_constraint(aws_sdk_s3::types::BucketLocationConstraint::EuWest3)
                .build(),
        )
        .send()
        .await
        .unwrap_or_else(|e| panic!("create test bucket {name}: {e:?}"));
}
