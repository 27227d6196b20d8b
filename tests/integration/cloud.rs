//! Migrations from and to S3 (issue 15): the real export read from an object gives exactly what
//! the file gives; quarantine and report land beside the input, encrypted; a dropped connection
//! is resumed; `--shard K/N` runs add up to one unsharded run. S3 is the emulator's (ministack),
//! or LocalStack's in the split configuration: wherever `AWS_ENDPOINT_URL_S3` or
//! `AWS_ENDPOINT_URL` sends it.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;

use aws_sdk_s3::primitives::ByteStream;
use bson::doc;
use hcctl::aws::{Aws, Target};
use serde_json::Value;

use crate::awsenv::require_endpoint;
use crate::util::{
    assert_exit, assert_success, n, real_dataset, row_with, stderr, TestEnv, HEADER,
};

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A bucket of the test's own (unique name), in eu-west-3 like the rest of the suite.
pub struct Bucket {
    pub aws: Aws,
    pub name: String,
}

impl Bucket {
    pub async fn new() -> Bucket {
        require_endpoint();
        let aws = Aws::connect(&Target {
            region: Some("eu-west-3".to_string()),
            endpoint_url: None,
        })
        .await;
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let name = format!("hcctl-test-{}-{n}", std::process::id());
        crate::util::create_bucket(&aws.s3, &name).await;
        Bucket { aws, name }
    }

    pub fn url(&self, key: &str) -> String {
        format!("s3://{}/{key}", self.name)
    }

    pub async fn put(&self, key: &str, body: Vec<u8>) {
        self.aws
            .s3
            .put_object()
            .bucket(&self.name)
            .key(key)
            .body(ByteStream::from(body))
            .send()
            .await
            .unwrap_or_else(|e| panic!("put {key}: {e:?}"));
    }

    pub async fn get(&self, key: &str) -> Vec<u8> {
        let out = self
            .aws
            .s3
            .get_object()
            .bucket(&self.name)
            .key(key)
            .send()
            .await
            .unwrap_or_else(|e| panic!("get {key}: {e:?}"));
        out.body.collect().await.expect("read body").to_vec()
    }

    /// The object's server-side encryption as HeadObject reports it.
    pub async fn encryption(&self, key: &str) -> Option<String> {
        let head = self
            .aws
            .s3
            .head_object()
            .bucket(&self.name)
            .key(key)
            .send()
            .await
            .unwrap_or_else(|e| panic!("head {key}: {e:?}"));
        head.server_side_encryption()
            .map(|s| s.as_str().to_string())
    }

    pub async fn keys(&self) -> Vec<String> {
        let out = self
            .aws
            .s3
            .list_objects_v2()
            .bucket(&self.name)
            .send()
            .await
            .expect("list objects");
        let mut keys: Vec<String> = out
            .contents()
            .iter()
            .filter_map(|o| o.key().map(str::to_string))
            .collect();
        keys.sort();
        keys
    }

    pub async fn json(&self, key: &str) -> Value {
        let body = self.get(key).await;
        serde_json::from_slice(&body).unwrap_or_else(|e| panic!("{key} is not JSON: {e}"))
    }
}

/// `hcctl migrate INPUT --db … --collection COLL` plus `extra`.
fn migrate(env: &TestEnv, input: &str, coll: &str, extra: &[&str]) -> std::process::Command {
    let mut args = vec!["migrate", input, "--db", &env.db, "--collection", coll];
    args.extend_from_slice(extra);
    env.command(&args)
}

/// A small export with `rows` valid rows (distinct names), one duplicate of the first and two
/// rejects (a bad age on line 3 and a bad date on the last line).
fn small_export(rows: usize) -> (Vec<u8>, usize) {
    let mut text = format!("{HEADER}\n");
    for i in 0..rows {
        let name = format!("Patient {i}");
        if i == 1 {
            text.push_str(&row_with(&[(0, &name), (1, "-4")]));
        } else {
            text.push_str(&row_with(&[(0, &name)]));
        }
        text.push('\n');
    }
    text.push_str(&row_with(&[(0, "Patient 0")]));
    text.push('\n');
    text.push_str(&row_with(&[(0, "Patient X"), (5, "2024-13-45")]));
    text.push('\n');
    (text.into_bytes(), rows + 2)
}

#[tokio::test]
async fn the_real_export_from_s3_gives_exactly_what_the_file_gives() {
    let env = TestEnv::new("s3_real").await;
    let bucket = Bucket::new().await;
    let dataset = real_dataset();
    let bytes = std::fs::read(&dataset).expect("read the dataset");
    bucket
        .put("incoming/2026/healthcare_dataset.csv", bytes)
        .await;

    let from_disk = env.migrate(&dataset, "disk", &[]);
    let url = bucket.url("incoming/2026/healthcare_dataset.csv");
    let out = migrate(&env, &url, "s3", &[]).output().expect("run hcctl");
    assert_success(&out);

    // The report went beside the input, under reports/, with the same figures.
    let report = bucket
        .json("reports/2026/healthcare_dataset.report.json")
        .await;
    for key in crate::util::MIGRATE_FIGURES {
        assert_eq!(
            report[key], from_disk[key],
            "{key}: {report} vs {from_disk}"
        );
    }
    // The lineage's source, as for a file: the name, not where it was read.
    assert_eq!(report["source"], "healthcare_dataset.csv");
    assert_eq!(n(&report, "rows_read"), 55_500);
    assert_eq!(
        bucket
            .encryption("reports/2026/healthcare_dataset.report.json")
            .await
            .as_deref(),
        Some("AES256")
    );

    // Document for document the same (lineage names the file, which is the key's name).
    let disk = env.docs("disk").await;
    let s3 = env.docs("s3").await;
    assert_eq!(disk.len() as u64, n(&from_disk, "inserted"));
    assert_eq!(disk.len(), s3.len());
    assert!(
        disk == s3,
        "documents from S3 differ from those from the file"
    );
    env.drop_db().await;
}

#[tokio::test]
async fn rejects_go_to_an_encrypted_quarantine_object_beside_the_input() {
    let env = TestEnv::new("s3_quarantine").await;
    let bucket = Bucket::new().await;
    let (csv, lines) = small_export(40);
    bucket.put("incoming/admissions.csv", csv.clone()).await;
    let out = migrate(&env, &bucket.url("incoming/admissions.csv"), "a", &[])
        .output()
        .expect("run hcctl");
    assert_success(&out);

    let keys = bucket.keys().await;
    assert_eq!(
        keys,
        [
            "incoming/admissions.csv",
            "quarantine/admissions.quarantine.csv",
            "reports/admissions.report.json"
        ]
    );
    let report = bucket.json("reports/admissions.report.json").await;
    assert_eq!(n(&report, "rows_read"), lines as u64);
    assert_eq!(n(&report, "inserted"), 39);
    assert_eq!(n(&report, "duplicates"), 1);
    assert_eq!(n(&report, "rejected"), 2);
    assert_eq!(
        report["quarantine"],
        bucket.url("quarantine/admissions.quarantine.csv")
    );
    assert_eq!(env.count("a", doc! {}).await, 39);

    let quarantine = bucket.get("quarantine/admissions.quarantine.csv").await;
    let text = String::from_utf8(quarantine).expect("utf-8 quarantine");
    let rows: Vec<&str> = text.lines().collect();
    assert_eq!(rows.len(), 3, "header and two rejects:\n{text}");
    assert!(rows[1].contains("Patient 1"), "{text}");
    assert!(rows[2].contains("Patient X"), "{text}");
    assert_eq!(
        bucket
            .encryption("quarantine/admissions.quarantine.csv")
            .await
            .as_deref(),
        Some("AES256")
    );

    // A rerun inserts nothing and replaces the outputs whole.
    let out = migrate(&env, &bucket.url("incoming/admissions.csv"), "a", &[])
        .output()
        .expect("run hcctl");
    assert_success(&out);
    let report = bucket.json("reports/admissions.report.json").await;
    assert_eq!(n(&report, "inserted"), 0);
    assert_eq!(n(&report, "duplicates"), 40);
    assert_eq!(env.count("a", doc! {}).await, 39);
    env.drop_db().await;
}

#[tokio::test]
async fn explicit_s3_and_local_outputs_and_a_gzipped_object() {
    let env = TestEnv::new("s3_gz").await;
    let bucket = Bucket::new().await;
    let (csv, _) = small_export(25);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&csv).expect("gzip");
    bucket
        .put("incoming/a.csv.gz", gz.finish().expect("gzip"))
        .await;
    let local_report = env.dir.path().join("r.json");
    let out = migrate(
        &env,
        &bucket.url("incoming/a.csv.gz"),
        "gz",
        &[
            "--quarantine",
            &bucket.url("elsewhere/q.csv"),
            "--report",
            local_report.to_str().expect("utf-8"),
        ],
    )
    .output()
    .expect("run hcctl");
    assert_success(&out);
    let report = crate::util::read_json(&local_report);
    assert_eq!(n(&report, "inserted"), 24);
    assert_eq!(n(&report, "rejected"), 2);
    assert_eq!(
        bucket.keys().await,
        ["elsewhere/q.csv", "incoming/a.csv.gz"]
    );
    assert_eq!(
        String::from_utf8(bucket.get("elsewhere/q.csv").await)
            .expect("utf-8")
            .lines()
            .count(),
        3
    );
    assert_eq!(env.count("gz", doc! {}).await, 24);

    // An output that is the input object is refused before anything is read.
    let out = migrate(
        &env,
        &bucket.url("incoming/a.csv.gz"),
        "gz2",
        &["--report", &bucket.url("incoming/a.csv.gz")],
    )
    .output()
    .expect("run hcctl");
    assert_exit(&out, 2);
    env.drop_db().await;
}

#[tokio::test]
async fn a_missing_object_or_bucket_is_a_usage_error_that_says_what_to_do() {
    let env = TestEnv::new("s3_missing").await;
    let bucket = Bucket::new().await;
    let out = migrate(&env, &bucket.url("incoming/none.csv"), "m", &[])
        .output()
        .expect("run hcctl");
    assert_exit(&out, 2);
    let err = stderr(&out);
    assert!(err.contains("incoming/none.csv"), "{err}");
    let out = migrate(
        &env,
        &format!("s3://{}-absent/incoming/a.csv", bucket.name),
        "m",
        &[],
    )
    .output()
    .expect("run hcctl");
    assert_exit(&out, 2);
    env.assert_nothing_written().await;
    // Nothing was left behind: no output objects, no incomplete uploads.
    assert!(bucket.keys().await.is_empty());
    let uploads = bucket
        .aws
        .s3
        .list_multipart_uploads()
        .bucket(&bucket.name)
        .send()
        .await
        .expect("list uploads");
    assert!(uploads.uploads().is_empty(), "{uploads:?}");
    env.drop_db().await;
}

/// A loopback proxy in front of S3 that cuts the first connection carrying more than `cut`
/// response bytes, once: the mid-body drop a real network can produce.
fn cutting_proxy(upstream: &str, cut: usize) -> (String, Arc<AtomicBool>) {
    let authority = upstream
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string();
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
    let addr = listener.local_addr().expect("proxy address");
    let cut_done = Arc::new(AtomicBool::new(false));
    let flag = cut_done.clone();
    std::thread::spawn(move || {
        for client in listener.incoming() {
            let Ok(client) = client else { return };
            let Ok(server) = TcpStream::connect(&authority) else {
                return;
            };
            let (c2, s2) = (
                client.try_clone().expect("clone"),
                server.try_clone().expect("clone"),
            );
            std::thread::spawn(move || pipe(c2, s2, None));
            let flag = flag.clone();
            std::thread::spawn(move || pipe(server, client, Some((cut, flag))));
        }
    });
    (format!("http://{addr}"), cut_done)
}

fn pipe(mut from: TcpStream, mut to: TcpStream, cut: Option<(usize, Arc<AtomicBool>)>) {
    let mut buf = [0u8; 16 * 1024];
    let mut sent = 0usize;
    loop {
        let k = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(k) => k,
        };
        if let Some((limit, flag)) = &cut {
            if sent + k > *limit && !flag.swap(true, Ordering::SeqCst) {
                let _ = to.write_all(&buf[..limit - sent.min(*limit)]);
                break;
            }
        }
        if to.write_all(&buf[..k]).is_err() {
            break;
        }
        sent += k;
    }
    let _ = to.shutdown(Shutdown::Both);
    let _ = from.shutdown(Shutdown::Both);
}

#[tokio::test]
async fn a_connection_dropped_mid_object_is_resumed_from_the_byte_reached() {
    let env = TestEnv::new("s3_resume").await;
    let bucket = Bucket::new().await;
    let dataset = real_dataset();
    bucket
        .put(
            "incoming/healthcare_dataset.csv",
            std::fs::read(&dataset).expect("read"),
        )
        .await;
    let upstream = std::env::var("AWS_ENDPOINT_URL_S3")
        .or_else(|_| std::env::var("AWS_ENDPOINT_URL"))
        .expect("an S3 endpoint");
    let (proxy, cut) = cutting_proxy(&upstream, 1_500_000);
    let report = env.dir.path().join("r.json");
    let out = migrate(
        &env,
        &bucket.url("incoming/healthcare_dataset.csv"),
        "resumed",
        &["--report", report.to_str().expect("utf-8")],
    )
    .env("AWS_ENDPOINT_URL_S3", &proxy)
    .output()
    .expect("run hcctl");
    assert_success(&out);
    assert!(cut.load(Ordering::SeqCst), "the proxy never cut a response");
    let err = stderr(&out);
    assert!(err.contains("resuming"), "no resume reported:\n{err}");
    let resumed = crate::util::read_json(&report);
    let direct = env.migrate(&dataset, "direct", &[]);
    for key in ["rows_read", "inserted", "duplicates", "rejected"] {
        assert_eq!(resumed[key], direct[key], "{key}");
    }
    assert!(env.docs("resumed").await == env.docs("direct").await);
    env.drop_db().await;
}

#[tokio::test]
async fn three_concurrent_shards_add_up_to_one_unsharded_run() {
    let env = TestEnv::new("s3_shards").await;
    let bucket = Bucket::new().await;
    let generated = env.generate("big.csv", 3_000, 7);
    let alone = env.migrate(&generated, "alone", &[]);
    let mut bytes = std::fs::read(&generated).expect("read");
    // Duplicates of the first rows and a few rejects, so every figure is exercised.
    let text = String::from_utf8(bytes.clone()).expect("utf-8");
    for line in text.lines().skip(1).take(20) {
        bytes.extend_from_slice(line.as_bytes());
        bytes.push(b'\n');
    }
    for i in 0..7 {
        bytes.extend_from_slice(row_with(&[(0, &format!("Bad {i}")), (1, "abc")]).as_bytes());
        bytes.push(b'\n');
    }
    bucket.put("incoming/big.csv", bytes).await;
    let url = bucket.url("incoming/big.csv");

    let whole = env.dir.path().join("whole.json");
    let out = migrate(
        &env,
        &url,
        "whole",
        &[
            "--report",
            whole.to_str().expect("utf-8"),
            "--quarantine",
            &bucket.url("q/whole.csv"),
        ],
    )
    .output()
    .expect("run hcctl");
    assert_success(&out);
    let whole = crate::util::read_json(&whole);

    let children: Vec<_> = (1..=3)
        .map(|k| {
            migrate(&env, &url, "sharded", &["--shard", &format!("{k}/3")])
                .spawn()
                .expect("start hcctl")
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().expect("wait");
        assert_success(&out);
    }
    let mut sums = [0u64; 4];
    for k in 1..=3 {
        let key = format!("reports/big.report.shard-{k}-of-3.json");
        let r = bucket.json(&key).await;
        assert_eq!(r["shard"], format!("{k}/3"), "{r}");
        for (i, f) in ["rows_read", "inserted", "duplicates", "rejected"]
            .iter()
            .enumerate()
        {
            sums[i] += n(&r, f);
        }
        assert!(n(&r, "inserted") > 0, "shard {k} did nothing: {r}");
    }
    assert_eq!(sums[0], n(&whole, "rows_read"));
    assert_eq!(sums[1], n(&whole, "inserted"));
    assert_eq!(sums[2], n(&whole, "duplicates"));
    assert_eq!(sums[3], n(&whole, "rejected"));
    assert_eq!(n(&whole, "duplicates"), n(&alone, "duplicates") + 20);
    assert_eq!(n(&whole, "rejected"), n(&alone, "rejected") + 7);
    assert!(env.docs("whole").await == env.docs("sharded").await);
    let mut quarantined = 0;
    for k in 1..=3 {
        let q = bucket
            .get(&format!("quarantine/big.quarantine.shard-{k}-of-3.csv"))
            .await;
        quarantined += String::from_utf8(q).expect("utf-8").lines().count() - 1;
    }
    assert_eq!(quarantined as u64, n(&whole, "rejected"));

    // verify, sharded the same way, finds each shard complete; unsharded, the whole.
    let mut checked = 0;
    for k in 1..=3 {
        let out = env.run(&[
            "verify",
            &url,
            "--db",
            &env.db,
            "--collection",
            "sharded",
            "--shard",
            &format!("{k}/3"),
            "--report",
            &bucket.url(&format!("v/{k}.json")),
        ]);
        assert_success(&out);
        let v = bucket.json(&format!("v/{k}.json")).await;
        assert_eq!(v["shard"], format!("{k}/3"), "{v}");
        assert_eq!(v["ok"], true, "{v}");
        assert_eq!((n(&v, "missing"), n(&v, "extra")), (0, 0), "{v}");
        checked += n(&v, "checked");
    }
    assert_eq!(checked, n(&whole, "rows_read") - n(&whole, "rejected"));
    let out = env.run(&["verify", &url, "--db", &env.db, "--collection", "sharded"]);
    assert_success(&out);
    env.drop_db().await;
}

/// Issue 23 review: an object read a second time (a dump file, checked and then loaded) is
/// pinned by the ETag of the first read: the same version reads, a replaced one is refused with
/// `PreconditionFailed`, never other bytes.
#[tokio::test]
async fn a_pinned_read_refuses_an_object_replaced_since() {
    use std::io::Read;
    let bucket = Bucket::new().await;
    bucket
        .put("dumps/x.bson.gz", b"first version".to_vec())
        .await;
    let url = hcctl::aws::s3::S3Url::parse(&bucket.url("dumps/x.bson.gz"))
        .expect("an s3 URL")
        .expect("a valid one");
    let first = hcctl::aws::s3::ObjectReader::open(bucket.aws.s3.clone(), url.clone())
        .await
        .expect("open");
    let etag = first.etag().expect("an ETag").to_string();
    let same =
        hcctl::aws::s3::ObjectReader::open_pinned(bucket.aws.s3.clone(), url.clone(), Some(&etag))
            .await
            .expect("the same version opens");
    let bytes = tokio::task::spawn_blocking(move || {
        let mut v = Vec::new();
        let mut same = same;
        same.read_to_end(&mut v).map(|_| v)
    })
    .await
    .expect("reader task")
    .expect("read");
    assert_eq!(bytes, b"first version");
    bucket
        .put("dumps/x.bson.gz", b"second version".to_vec())
        .await;
    let replaced =
        hcctl::aws::s3::ObjectReader::open_pinned(bucket.aws.s3.clone(), url, Some(&etag)).await;
    let err = replaced.err().expect("a replaced object is refused");
    assert_eq!(err.code.as_deref(), Some("PreconditionFailed"), "{err}");
}
