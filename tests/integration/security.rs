//! Security controls, exercised for real: init-mongo.js run by mongosh, db-users, end users with
//! argon2id, TLS to a FerretDB TLS listener with a certificate made in the test, least privilege.

use std::io::Write;
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use bson::doc;
use futures_util::TryStreamExt;
use mongodb::options::{ClientOptions, Credential};
use mongodb::Client;

use crate::util::{
    assert_exit, assert_success, not_applicable, row_with, stderr, stdout, TestEnv, HCCTL, HEADER,
};

fn tool(var: &str) -> String {
    std::env::var(var).unwrap_or_else(|_| {
        panic!("{var} is not set: run `eval \"$(scripts/stack up)\"` (it exports the tools the tests run)")
    })
}

/// Run `hcctl ARGS` with `input` on stdin.
fn run_with_stdin(env: &TestEnv, args: &[&str], input: &str) -> Output {
    let mut child = env
        .command(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {HCCTL}: {e}"));
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.as_bytes())
        .expect("write stdin");
    child.wait_with_output().expect("wait for hcctl")
}

/// `hcctl users VERB NAME [EXTRA…] --password-stdin --db <test db>` with `password` on stdin.
fn users_cmd(env: &TestEnv, verb: &str, name: &str, password: &str, extra: &[&str]) -> Output {
    let mut args = vec!["users", verb, name];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["--password-stdin", "--db", &env.db]);
    run_with_stdin(env, &args, &format!("{password}\n"))
}

/// A client authenticated as `user` on `db` of the test server.
async fn login(uri: &str, user: &str, pw: &str, db: &str) -> Result<Client, mongodb::error::Error> {
    let mut options = ClientOptions::parse(uri).await?;
    options.credential = Some(
        Credential::builder()
            .username(user.to_string())
            .password(pw.to_string())
            .source(db.to_string())
            .build(),
    );
    options.server_selection_timeout = Some(Duration::from_secs(5));
    let client = Client::with_options(options)?;
    client.database(db).run_command(doc! { "ping": 1 }).await?;
    Ok(client)
}

async fn user_names(env: &TestEnv) -> Vec<String> {
    let reply = env
        .client
        .database(&env.db)
        .run_command(doc! { "usersInfo": 1 })
        .await
        .expect("usersInfo");
    let mut names: Vec<String> = reply
        .get_array("users")
        .expect("users")
        .iter()
        .filter_map(|u| u.as_document()?.get_str("user").ok().map(str::to_string))
        .collect();
    names.sort();
    names
}

async fn drop_users(env: &TestEnv) {
    let _ = env
        .client
        .database(&env.db)
        .run_command(doc! { "dropAllUsersFromDatabase": 1 })
        .await;
}

fn mongosh_init(env: &TestEnv, passwords: [&str; 3]) -> Output {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("init-mongo.js");
    Command::new(tool("HCCTL_MONGOSH"))
        .arg(&env.uri)
        .arg("--quiet")
        .arg("--file")
        .arg(script)
        .env("MONGO_DATABASE", &env.db)
        .env("MONGO_ADMIN_PASSWORD", passwords[0])
        .env("MONGO_WRITER_PASSWORD", passwords[1])
        .env("MONGO_READER_PASSWORD", passwords[2])
        .stdin(Stdio::null())
        .output()
        .expect("run mongosh")
}

#[tokio::test]
async fn init_mongo_js_creates_the_three_accounts_idempotently_and_refuses_weak_passwords() {
    let env = TestEnv::new("initjs").await;
    // Refused before anything is created: one empty, one default.
    let out = mongosh_init(&env, ["admin-password-123", "", "changeme"]);
    assert!(!out.status.success(), "must refuse: {}", stdout(&out));
    let err = format!("{}{}", stdout(&out), stderr(&out));
    assert!(
        err.contains("MONGO_WRITER_PASSWORD is not set or empty"),
        "{err}"
    );
    assert!(
        err.contains("MONGO_READER_PASSWORD is a well-known default"),
        "{err}"
    );
    assert!(user_names(&env).await.is_empty());
    // The length is counted as hcctl counts it: characters, not UTF-16 units, without padding.
    let emoji = "\u{1F600}".repeat(6);
    let out = mongosh_init(&env, ["          ab", &emoji, "reader\u{200B}password-123"]);
    assert!(!out.status.success(), "must refuse: {}", stdout(&out));
    let err = format!("{}{}", stdout(&out), stderr(&out));
    for expected in [
        "MONGO_ADMIN_PASSWORD is shorter than 12 characters",
        "MONGO_WRITER_PASSWORD is shorter than 12 characters",
        "MONGO_READER_PASSWORD contains control or invisible characters",
    ] {
        assert!(err.contains(expected), "{expected}: {err}");
    }
    assert!(!err.contains(&emoji), "a password was printed: {err}");
    assert!(user_names(&env).await.is_empty());

    let pws = [
        "admin-password-123",
        "writer-password-123",
        "reader-password-123",
    ];
    let first = mongosh_init(&env, pws);
    assert!(
        first.status.success(),
        "{}{}",
        stdout(&first),
        stderr(&first)
    );
    let second = mongosh_init(&env, pws);
    assert!(
        second.status.success(),
        "running twice is not an error: {}",
        stderr(&second)
    );
    assert!(
        stdout(&second).contains("account writer@"),
        "{}",
        stdout(&second)
    );
    assert_eq!(user_names(&env).await, ["admin", "reader", "writer"]);
    for (user, pw) in [("admin", pws[0]), ("writer", pws[1]), ("reader", pws[2])] {
        login(&env.uri, user, pw, &env.db)
            .await
            .unwrap_or_else(|e| panic!("{user} cannot log in: {e}"));
    }
    let all = format!("{}{}", stdout(&first), stdout(&second));
    for pw in pws {
        assert!(!all.contains(pw), "a password was printed");
    }
    drop_users(&env).await;
    env.drop_db().await;
}

#[tokio::test]
async fn end_users_get_argon2id_hashes_and_verification_hides_who_exists() {
    let env = TestEnv::new("users").await;
    let db = env.db.clone();
    let ok = users_cmd(
        &env,
        "add",
        "alice",
        "correct horse battery",
        &["--role", "writer"],
    );
    assert_success(&ok);
    // The stored hash, read back from the server: argon2id PHC with OWASP parameters.
    let doc = env
        .coll("app_users")
        .find_one(doc! { "name": "alice" })
        .await
        .unwrap()
        .expect("alice stored");
    let hash = doc.get_str("password_hash").unwrap();
    assert!(
        hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
        "{hash}"
    );
    assert_eq!(doc.get_str("role").unwrap(), "writer");
    assert!(!format!("{doc}").contains("correct horse battery"));

    // Duplicate name refused by the unique index; too short refused before hashing.
    let dup = users_cmd(&env, "add", "alice", "another long password", &[]);
    assert_exit(&dup, 2);
    assert!(stderr(&dup).contains("already exists"));
    let short = users_cmd(&env, "add", "bob", "short pw", &[]);
    assert_exit(&short, 2);
    assert!(stderr(&short).contains("at least 12 characters"));
    assert_eq!(env.count("app_users", doc! { "name": "bob" }).await, 0);
    // No terminal and no --password-stdin: refuses, never reads an argument.
    let no_tty = env.run(&["users", "add", "carol", "--db", &db]);
    assert_exit(&no_tty, 2);
    assert!(stderr(&no_tty).contains("--password-stdin"));

    let good = users_cmd(&env, "verify", "alice", "correct horse battery", &[]);
    assert_success(&good);
    let wrong = users_cmd(&env, "verify", "alice", "wrong horse battery", &[]);
    assert_exit(&wrong, 1);
    let unknown = users_cmd(&env, "verify", "mallory", "wrong horse battery", &[]);
    assert_exit(&unknown, 1);
    assert_eq!(
        stderr(&wrong),
        stderr(&unknown),
        "the same answer whether or not the user exists"
    );

    let passwd = users_cmd(&env, "passwd", "alice", "a brand new passphrase", &[]);
    assert_success(&passwd);
    let old = users_cmd(&env, "verify", "alice", "correct horse battery", &[]);
    assert_exit(&old, 1);
    let new = users_cmd(&env, "verify", "alice", "a brand new passphrase", &[]);
    assert_success(&new);

    let list = env.run(&["users", "list", "--db", &db, "--format", "json"]);
    assert_success(&list);
    let text = stdout(&list);
    assert!(
        text.contains("\"alice\"") && text.contains("argon2id"),
        "{text}"
    );
    assert!(
        !text.contains("$argon2id$"),
        "no hash in the listing: {text}"
    );

    let rm = env.run(&["users", "remove", "alice", "--db", &db]);
    assert_success(&rm);
    assert_eq!(env.count("app_users", doc! {}).await, 0);
    env.drop_db().await;
}

/// Issue 24, finding 6 (`users add`): any duplicate-key error read as "user already exists".
/// With another unique index on app_users (here one user per role), a new user refused by it
/// is now an error naming that index (exit 1); a taken name is still "already exists" (exit 2).
#[tokio::test]
async fn users_add_tells_another_unique_index_from_a_taken_name() {
    use mongodb::options::IndexOptions;
    use mongodb::IndexModel;
    let env = TestEnv::new("usersidx").await;
    let alice = users_cmd(
        &env,
        "add",
        "alice",
        "correct horse battery",
        &["--role", "writer"],
    );
    assert_success(&alice);
    env.coll("app_users")
        .create_index(
            IndexModel::builder()
                .keys(doc! { "role": 1 })
                .options(
                    IndexOptions::builder()
                        .name("one_per_role".to_string())
                        .unique(true)
                        .build(),
                )
                .build(),
        )
        .await
        .unwrap();
    let bob = users_cmd(
        &env,
        "add",
        "bob",
        "another long password",
        &["--role", "writer"],
    );
    assert_exit(&bob, 1);
    let err = stderr(&bob);
    assert!(
        err.contains("the unique index one_per_role of app_users"),
        "{err}"
    );
    assert!(!err.contains("already exists"), "{err}");
    assert_eq!(env.count("app_users", doc! { "name": "bob" }).await, 0);
    let again = users_cmd(
        &env,
        "add",
        "alice",
        "yet another password",
        &["--role", "writer"],
    );
    assert_exit(&again, 2);
    assert!(stderr(&again).contains("user alice already exists"));
    assert_eq!(env.count("app_users", doc! {}).await, 1);
    env.drop_db().await;
}

#[tokio::test]
async fn legacy_bcrypt_hashes_verify_and_are_upgraded_to_argon2id() {
    let env = TestEnv::new("bcrypt").await;
    // Create the collection and its index through hcctl, then plant a legacy user.
    let seed = users_cmd(&env, "add", "seed", "seed password 123", &[]);
    assert_success(&seed);
    let legacy = bcrypt::hash("legacy password", 4).unwrap();
    env.coll("app_users")
        .insert_one(doc! { "name": "bert", "role": "reader", "password_hash": &legacy })
        .await
        .unwrap();
    let ok = users_cmd(&env, "verify", "bert", "legacy password", &[]);
    assert_success(&ok);
    let doc = env
        .coll("app_users")
        .find_one(doc! { "name": "bert" })
        .await
        .unwrap()
        .unwrap();
    let now = doc.get_str("password_hash").unwrap();
    assert!(now.starts_with("$argon2id$"), "upgraded: {now}");
    let again = users_cmd(&env, "verify", "bert", "legacy password", &[]);
    assert_success(&again);
    env.drop_db().await;
}

#[tokio::test]
async fn unknown_users_take_as_long_to_verify_as_known_ones() {
    use hcctl::security::app_users::{Role, Users};
    let env = TestEnv::new("timing").await;
    let db = env.client.database(&env.db);
    let users = Users::open(&db).await.unwrap();
    users
        .add("known", Role::Reader, "known user password")
        .await
        .unwrap();
    let time = |name: &'static str| {
        let users = &users;
        async move {
            let started = Instant::now();
            assert!(!users.verify(name, "not the password!").await.unwrap());
            started.elapsed().as_secs_f64()
        }
    };
    // Warm up both paths (the unknown path hashes its dummy once), then alternate, so that a
    // burst of load on a shared machine hits both sides alike; compare the medians.
    time("known").await;
    time("nobody").await;
    let (mut known, mut unknown) = (Vec::new(), Vec::new());
    for _ in 0..5 {
        known.push(time("known").await);
        unknown.push(time("nobody").await);
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let ratio = median(&mut unknown) / median(&mut known);
    assert!(
        (0.5..2.0).contains(&ratio),
        "known {known:?}, unknown {unknown:?}: the time tells whether a user exists"
    );
    env.drop_db().await;
}

#[tokio::test]
async fn db_users_apply_converges_and_never_shows_passwords() {
    let env = TestEnv::new("dbusers").await;
    let config = env.write(
        "hcctl.yaml",
        crate::awsenv::config_text("dbu", "mongo:7.0.14", 30)
            + &format!(
                "database:\n  name: {}\n  accounts:\n    - name: admin\n      roles: [dbAdmin, userAdmin]\n      password_env: T_ADMIN_PW\n    - name: writer\n      roles: [readWrite]\n      password_env: T_WRITER_PW\n    - name: reader\n      roles: [read]\n      password_file: reader.pw\n",
                env.db
            ),
    );
    env.write("reader.pw", "reader-file-password-1\n");
    let apply = |writer_pw: &str| {
        env.command(&[
            "db-users",
            "apply",
            "--config",
            config.to_str().unwrap(),
            "--format",
            "json",
        ])
        .env("T_ADMIN_PW", "admin-env-password-1")
        .env("T_WRITER_PW", writer_pw)
        .env("HCCTL_AWS_ACCOUNT_ID", "000000000000")
        .env(
            "HCCTL_TEST_KMS_KEY",
            "arn:aws:kms:eu-west-3:000000000000:key/unused",
        )
        .output()
        .unwrap()
    };
    let first = apply("writer-env-password-1");
    assert_success(&first);
    let report: serde_json::Value = serde_json::from_str(&stdout(&first)).unwrap();
    assert_eq!(account_actions(&report), ["create", "create", "create"]);
    let second = apply("writer-env-password-1");
    let report: serde_json::Value = serde_json::from_str(&stdout(&second)).unwrap();
    assert_eq!(
        account_actions(&report),
        ["unchanged", "unchanged", "unchanged"]
    );
    let third = apply("writer-env-password-2");
    let report: serde_json::Value = serde_json::from_str(&stdout(&third)).unwrap();
    assert_eq!(
        report["accounts"][1]["changes"],
        serde_json::json!(["password"])
    );
    login(&env.uri, "writer", "writer-env-password-2", &env.db)
        .await
        .expect("new writer password works");
    login(&env.uri, "reader", "reader-file-password-1", &env.db)
        .await
        .expect("reader from file works");

    // A weak password stops everything before a change.
    let weak = apply("changeme");
    assert_exit(&weak, 2);
    assert!(
        stderr(&weak).contains("account writer"),
        "{}",
        stderr(&weak)
    );

    let list = env.run(&["db-users", "list", "--db", &env.db]);
    assert_success(&list);
    let all = format!(
        "{}{}{}{}",
        stdout(&first),
        stderr(&first),
        stdout(&list),
        stderr(&list)
    );
    for secret in [
        "admin-env-password-1",
        "writer-env-password-1",
        "reader-file-password-1",
    ] {
        assert!(!all.contains(secret), "a password was printed");
    }
    assert!(stdout(&list).contains("reader"));
    drop_users(&env).await;
    env.drop_db().await;
}

/// Issue 24, finding 9: the password rule counted code points, so twelve U+202E, U+2066,
/// U+3164, U+2800, U+180E or U+FFA0, or one letter followed by eleven combining marks, passed
/// `users add` and `db-users apply` (and init-mongo.js, which had the same rule). All three now
/// count what is seen and refuse bidi controls, fillers and marks with nothing to sit on; nothing
/// is created, and no password is printed.
#[tokio::test]
async fn invisible_and_combining_passwords_are_refused_by_users_db_users_and_init_mongo_js() {
    let env = TestEnv::new("pwshapes").await;
    let mut weak: Vec<String> = [
        '\u{202E}', '\u{2066}', '\u{3164}', '\u{2800}', '\u{180E}', '\u{FFA0}',
    ]
    .iter()
    .map(|c| c.to_string().repeat(12))
    .collect();
    weak.push(format!("a{}", "\u{0301}".repeat(11)));
    weak.push("\u{0301}".repeat(12));
    weak.push(format!("tag{}", "\u{E0041}".repeat(9)));

    for pw in &weak {
        let out = users_cmd(&env, "add", "mallory", pw, &[]);
        assert_exit(&out, 2);
        let err = stderr(&out);
        assert!(
            !err.contains(pw.as_str()),
            "the password was printed: {err}"
        );
    }
    assert_eq!(env.count("app_users", doc! { "name": "mallory" }).await, 0);

    let config = env.write(
        "hcctl.yaml",
        crate::awsenv::config_text("pws", "mongo:7.0.14", 30)
            + &format!(
                "database:\n  name: {}\n  accounts:\n    - name: writer\n      roles: [readWrite]\n      password_env: T_WRITER_PW\n",
                env.db
            ),
    );
    for pw in &weak {
        let out = env
            .command(&["db-users", "apply", "--config", config.to_str().unwrap()])
            .env("T_WRITER_PW", pw)
            .env("HCCTL_AWS_ACCOUNT_ID", "000000000000")
            .env(
                "HCCTL_TEST_KMS_KEY",
                "arn:aws:kms:eu-west-3:000000000000:key/unused",
            )
            .output()
            .unwrap();
        assert_exit(&out, 2);
        let err = stderr(&out);
        assert!(err.contains("account writer"), "{err}");
        assert!(
            !err.contains(pw.as_str()),
            "the password was printed: {err}"
        );
    }
    assert!(user_names(&env).await.is_empty());

    // init-mongo.js, run by mongosh: the same verdicts, three accounts at a time.
    for three in weak.chunks(3) {
        let pws = [0, 1, 2].map(|i| three.get(i).map_or("admin-password-123", String::as_str));
        let out = mongosh_init(&env, pws);
        let all = format!("{}{}", stdout(&out), stderr(&out));
        assert!(!out.status.success(), "must refuse: {all}");
        for (variable, pw) in [
            "MONGO_ADMIN_PASSWORD",
            "MONGO_WRITER_PASSWORD",
            "MONGO_READER_PASSWORD",
        ]
        .iter()
        .zip(three)
        {
            assert!(
                all.contains(&format!(
                    "{variable} contains control or invisible characters"
                )) || all.contains(&format!("{variable} has a combining mark with no letter"))
                    || all.contains(&format!("{variable} is shorter than 12 characters")),
                "{variable} not refused: {all}"
            );
            assert!(!all.contains(pw.as_str()), "a password was printed: {all}");
        }
    }
    assert!(user_names(&env).await.is_empty());
    // Accents and other scripts count as seen: a good password in them still works.
    let out = mongosh_init(
        &env,
        [
            "Crème brûlée à la carte",
            "パスワードは十二文字です",
            "reader-password-123",
        ],
    );
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    login(&env.uri, "writer", "パスワードは十二文字です", &env.db)
        .await
        .expect("the writer logs in with its password");
    drop_users(&env).await;
    env.drop_db().await;
}

/// The `action` of each account in a `db-users apply --format json` report.
fn account_actions(report: &serde_json::Value) -> Vec<&str> {
    report["accounts"]
        .as_array()
        .expect("accounts")
        .iter()
        .map(|a| a["action"].as_str().expect("action"))
        .collect()
}

/// Roles are enforced by MongoDB, not by FerretDB 1.x (it cannot even store them). Against a
/// server that enforces them, the reader cannot write and the writer cannot create users;
/// elsewhere the test says loudly that it does not apply, on stderr and in a report file that
/// scripts/test prints.
#[tokio::test]
async fn least_privilege_reader_cannot_write_and_writer_cannot_create_users() {
    let env = TestEnv::new("leastpriv").await;
    let info = env
        .client
        .database("admin")
        .run_command(doc! { "buildInfo": 1 })
        .await
        .unwrap();
    // Whatever the server, the reader account is enough for `hcctl verify`.
    let pws = [
        "admin-password-123",
        "writer-password-123",
        "reader-password-123",
    ];
    assert!(mongosh_init(&env, pws).status.success());
    let csv = env.write("one.csv", format!("{HEADER}\n{}\n", row_with(&[])));
    env.migrate(&csv, "patients", &[]);
    let reader_uri = with_credentials(&env.uri, "reader", pws[2], &env.db);
    let verify = env
        .command(&["verify", csv.to_str().unwrap(), "--db", &env.db])
        .env("HCCTL_MONGODB_URI", &reader_uri)
        .output()
        .unwrap();
    assert_success(&verify);

    if let Ok(v) = info.get_str("ferretdbVersion") {
        not_applicable(
            "least_privilege_reader_cannot_write_and_writer_cannot_create_users",
            &format!(
                "the server is FerretDB {v}, which neither stores nor enforces roles; run the \
                 suite against MongoDB (HCCTL_TEST_MONGODB_URI) to exercise it"
            ),
        );
        drop_users(&env).await;
        env.drop_db().await;
        return;
    }
    let reader = login(&env.uri, "reader", pws[2], &env.db).await.unwrap();
    let denied = reader
        .database(&env.db)
        .collection::<bson::Document>("patients")
        .insert_one(doc! { "x": 1 })
        .await;
    assert!(denied.is_err(), "the reader could write");
    let writer = login(&env.uri, "writer", pws[1], &env.db).await.unwrap();
    let denied = writer
        .database(&env.db)
        .run_command(doc! { "createUser": "intruder", "pwd": "intruder-password-1", "roles": [] })
        .await;
    assert!(denied.is_err(), "the writer could create a user");
    let found: Vec<bson::Document> = reader
        .database(&env.db)
        .collection::<bson::Document>("patients")
        .find(doc! {})
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(found.len(), 1, "the reader can read");
    drop_users(&env).await;
    env.drop_db().await;
}

fn with_credentials(uri: &str, user: &str, pw: &str, db: &str) -> String {
    let (scheme, rest) = uri.split_once("://").expect("a mongodb:// URI");
    let hosts_and_rest = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
    let hosts = hosts_and_rest
        .split(['/', '?'])
        .next()
        .unwrap_or(hosts_and_rest);
    format!("{scheme}://{user}:{pw}@{hosts}/{db}?authSource={db}")
}

/// A FerretDB process with a TLS listener, stopped on drop.
struct TlsServer {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Drop for TlsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn start_tls_ferretdb(dir: tempfile::TempDir, cert: &Path, key: &Path) -> TlsServer {
    std::fs::create_dir_all(dir.path().join("data")).unwrap();
    // The free ports are free when asked, not necessarily when FerretDB binds them: a server
    // that exits at once (a port taken meanwhile) is started again on other ports.
    for _attempt in 0..3 {
        let (plain, port) = (free_port(), free_port());
        let mut child = Command::new(tool("HCCTL_FERRETDB_BIN"))
            .arg("--handler=sqlite")
            .arg(format!(
                "--sqlite-url=file:{}/",
                dir.path().join("data").display()
            ))
            .arg(format!("--listen-addr=127.0.0.1:{plain}"))
            .arg(format!("--listen-tls=127.0.0.1:{port}"))
            .arg(format!("--listen-tls-cert-file={}", cert.display()))
            .arg(format!("--listen-tls-key-file={}", key.display()))
            .arg(format!("--state-dir={}", dir.path().display()))
            .args(["--telemetry=disable", "--debug-addr=-", "--log-level=error"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start FerretDB with TLS");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return TlsServer {
                    child,
                    port,
                    _dir: dir,
                };
            }
            if child.try_wait().unwrap().is_some() {
                break; // exited: try other ports
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                panic!("the TLS listener on 127.0.0.1:{port} did not come up in 20 s");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    panic!("FerretDB with TLS exited at start three times");
}

pub fn make_ca(name: &str) -> (rcgen::Certificate, rcgen::KeyPair) {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, name);
    (params.self_signed(&key).unwrap(), key)
}

#[tokio::test]
async fn tls_with_a_verified_certificate_works_and_a_wrong_ca_fails_clearly() {
    let env = TestEnv::new("tls").await;
    let dir = tempfile::tempdir().unwrap();
    let (ca, ca_key) = make_ca("hcctl test CA");
    let server_key = rcgen::KeyPair::generate().unwrap();
    let server =
        rcgen::CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
            .unwrap()
            .signed_by(&server_key, &ca, &ca_key)
            .unwrap();
    let (other_ca, _) = make_ca("some other CA");
    let write = |name: &str, pem: String| {
        let p = dir.path().join(name);
        std::fs::write(&p, pem).unwrap();
        p
    };
    let ca_pem = write("ca.pem", ca.pem());
    let other_pem = write("other-ca.pem", other_ca.pem());
    let cert_pem = write("server.pem", server.pem());
    let key_pem = write("server.key", server_key.serialize_pem());
    let srv = start_tls_ferretdb(tempfile::tempdir().unwrap(), &cert_pem, &key_pem);

    let csv = env.write("one.csv", format!("{HEADER}\n{}\n", row_with(&[])));
    let uri = format!("mongodb://localhost:{}/", srv.port);
    let ok = env
        .command(&[
            "migrate",
            csv.to_str().unwrap(),
            "--db",
            "tlsdb",
            "--tls-ca-file",
            ca_pem.to_str().unwrap(),
        ])
        .env("HCCTL_MONGODB_URI", &uri)
        .output()
        .unwrap();
    assert_success(&ok);
    assert!(stdout(&ok).contains("inserted"), "{}", stdout(&ok));
    // The same through the URI's own TLS options.
    let uri_tls = format!(
        "mongodb://127.0.0.1:{}/?tls=true&tlsCAFile={}",
        srv.port,
        ca_pem.display()
    );
    let ok = env
        .command(&["verify", csv.to_str().unwrap(), "--db", "tlsdb"])
        .env("HCCTL_MONGODB_URI", &uri_tls)
        .output()
        .unwrap();
    assert_success(&ok);

    let started = Instant::now();
    let bad = env
        .command(&[
            "verify",
            csv.to_str().unwrap(),
            "--db",
            "tlsdb",
            "--tls-ca-file",
            other_pem.to_str().unwrap(),
            "--connect-timeout",
            "3s",
        ])
        .env("HCCTL_MONGODB_URI", &uri)
        .output()
        .unwrap();
    assert_exit(&bad, 1);
    assert!(started.elapsed() < Duration::from_secs(15));
    let err = stderr(&bad);
    assert!(err.contains("TLS"), "{err}");
    assert!(err.to_lowercase().contains("certificate"), "{err}");
}
