//! The database's technical accounts (admin, writer, reader) on a server that already runs: the
//! same accounts `init-mongo.js` creates at first start, converged from the config. Passwords come
//! from environment variables or files named in the config, never from the command line, and are
//! never printed.

use std::fmt;

use bson::{doc, Bson, Document};
use mongodb::options::{ClientOptions, Credential};
use mongodb::Client;
use serde::Serialize;

use crate::config::{Account, DatabaseAccounts};
use crate::error::Error;
use crate::mongo::{self, Connection};

/// Passwords refused whatever their length (the defaults of tutorials and compose files).
const REFUSED: [&str; 8] = [
    "password",
    "changeme",
    "example",
    "secret",
    "admin",
    "mongo",
    "123456789012",
    "password1234",
];

/// The password of an account, from its environment variable or file, checked.
pub fn password_of(a: &Account) -> Result<String, Error> {
    let (value, from) = match (&a.password_env, &a.password_file) {
        (Some(var), None) => (
            std::env::var(var).map_err(|_| {
                Error::usage(format!(
                    "account {}: environment variable {var} is not set",
                    a.name
                ))
            })?,
            format!("environment variable {var}"),
        ),
        (None, Some(path)) => (
            std::fs::read_to_string(path)
                .map_err(|e| {
                    Error::usage(format!(
                        "account {}: cannot read the password file {}: {e}",
                        a.name,
                        path.display()
                    ))
                })?
                .trim_end_matches(['\n', '\r'])
                .to_string(),
            format!("file {}", path.display()),
        ),
        _ => {
            return Err(Error::usage(format!(
                "account {}: give exactly one of password_env or password_file",
                a.name
            )))
        }
    };
    check_account_password(&a.name, &value, &from)?;
    Ok(value)
}

/// Empty, default-looking or short passwords are refused (the same rule as init-mongo.js).
pub fn check_account_password(name: &str, pw: &str, from: &str) -> Result<(), Error> {
    if pw.is_empty() {
        return Err(Error::usage(format!(
            "account {name}: the password in {from} is empty"
        )));
    }
    if REFUSED.contains(&pw.to_ascii_lowercase().as_str()) {
        return Err(Error::usage(format!(
            "account {name}: the password in {from} is a well-known default; generate one \
             (e.g. openssl rand -hex 24)"
        )));
    }
    crate::security::passwords::check_policy(pw).map_err(|e| {
        Error::usage(format!(
            "account {name}: the password in {from}: {e}; generate one (e.g. openssl rand -hex 24)"
        ))
    })
}

/// A database user as the server reports it (never with credentials).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct DbUser {
    pub name: String,
    pub db: String,
    pub roles: Vec<String>,
}

/// The users of `db`: `usersInfo` without credentials.
pub async fn list(conn: &Connection, db: &str) -> Result<Vec<DbUser>, Error> {
    let reply = conn
        .client
        .database(db)
        .run_command(doc! { "usersInfo": 1 })
        .await
        .map_err(|e| {
            Error::failed(format!(
                "listing the users of database {db}: {}",
                crate::mongo::describe(&e)
            ))
        })?;
    let mut users: Vec<DbUser> = reply
        .get_array("users")
        .map(|a| {
            a.iter()
                .filter_map(Bson::as_document)
                .map(user_from)
                .collect()
        })
        .unwrap_or_default();
    users.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(users)
}

fn user_from(d: &Document) -> DbUser {
    let mut roles: Vec<String> = d
        .get_array("roles")
        .map(|r| {
            r.iter()
                .filter_map(Bson::as_document)
                .filter_map(|r| r.get_str("role").ok().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    roles.sort();
    DbUser {
        name: d.get_str("user").unwrap_or_default().to_string(),
        db: d.get_str("db").unwrap_or_default().to_string(),
        roles,
    }
}

/// One line of `db-users apply`.
#[derive(Debug, Clone, Serialize)]
pub struct Change {
    pub name: String,
    /// create, update, unchanged
    pub action: &'static str,
    pub changes: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ApplyReport {
    pub database: String,
    /// False on servers that cannot store roles (FerretDB 1.x): the accounts then have none.
    pub roles_supported: bool,
    pub accounts: Vec<Change>,
}

/// Whether the server can store roles. FerretDB 1.x answers `createUser` with roles by
/// NotImplemented (it neither stores nor enforces them); it says who it is in `buildInfo`.
pub async fn roles_supported(conn: &Connection) -> Result<Option<String>, Error> {
    let info = conn
        .client
        .database("admin")
        .run_command(doc! { "buildInfo": 1 })
        .await
        .map_err(|e| Error::failed(format!("asking the server for buildInfo: {}", code_of(&e))))?;
    Ok(info
        .get_str("ferretdbVersion")
        .ok()
        .map(|v| format!("FerretDB {v}")))
}

impl fmt::Display for ApplyReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "database accounts of {}:", self.database)?;
        if !self.roles_supported {
            writeln!(
                f,
                "  WARNING: this server cannot store roles: the accounts were created WITHOUT roles \
                 and are NOT least-privilege here (on MongoDB they get the roles of the config)"
            )?;
        }
        for c in &self.accounts {
            let sym = match c.action {
                "create" => "+",
                "update" => "~",
                _ => "=",
            };
            write!(f, "  {sym} {:<10} {}", c.name, c.action)?;
            if !c.changes.is_empty() {
                write!(f, ": {}", c.changes.join("; "))?;
            }
            writeln!(f)?;
        }
        Ok(())
    }
}

/// `hcctl db-users apply`: every password is read and checked before connecting, then the
/// accounts are converged.
pub async fn apply_command(
    server: &crate::cli::ServerArgs,
    spec: &DatabaseAccounts,
) -> Result<ApplyReport, Error> {
    let wanted = spec
        .accounts
        .iter()
        .map(|a| password_of(a).map(|pw| (a, pw)))
        .collect::<Result<Vec<_>, Error>>()?;
    let conn = mongo::connect(server).await?;
    apply(&conn, server, spec, wanted).await
}

/// Converge the accounts: create the missing, update roles and passwords that differ. A
/// password "differs" when logging in with it fails.
async fn apply(
    conn: &Connection,
    server: &crate::cli::ServerArgs,
    spec: &DatabaseAccounts,
    wanted: Vec<(&Account, String)>,
) -> Result<ApplyReport, Error> {
    let db = &spec.name;
    let without_roles = roles_supported(conn).await?;
    if let Some(server) = &without_roles {
        tracing::warn!(%server, "the server cannot store roles: accounts are created without roles");
    }
    let existing = list(conn, db).await?;
    let handle = conn.client.database(db);
    let mut report = ApplyReport {
        database: db.clone(),
        roles_supported: without_roles.is_none(),
        accounts: Vec::new(),
    };
    for (a, pw) in wanted {
        let (roles, want_roles): (Vec<Document>, Vec<String>) = if without_roles.is_some() {
            (Vec::new(), Vec::new())
        } else {
            let mut names = a.roles.clone();
            names.sort();
            (
                a.roles
                    .iter()
                    .map(|r| doc! { "role": r, "db": db })
                    .collect(),
                names,
            )
        };
        match existing.iter().find(|u| u.name == a.name) {
            None => {
                handle
                    .run_command(doc! { "createUser": &a.name, "pwd": &pw, "roles": roles })
                    .await
                    .map_err(|e| {
                        Error::failed(format!("creating account {}: {}", a.name, code_of(&e)))
                    })?;
                let what = if want_roles.is_empty() {
                    "no roles (unsupported by this server)".to_string()
                } else {
                    format!("roles {}", want_roles.join(", "))
                };
                report.accounts.push(Change {
                    name: a.name.clone(),
                    action: "create",
                    changes: vec![what],
                });
            }
            Some(u) => {
                let mut changes = Vec::new();
                let mut update = doc! { "updateUser": &a.name };
                if u.roles != want_roles {
                    changes.push(format!(
                        "roles {} → {}",
                        u.roles.join(", "),
                        want_roles.join(", ")
                    ));
                    update.insert("roles", roles);
                }
                if !can_log_in(server, &a.name, &pw, db).await {
                    changes.push("password".to_string());
                    update.insert("pwd", &pw);
                }
                if changes.is_empty() {
                    report.accounts.push(Change {
                        name: a.name.clone(),
                        action: "unchanged",
                        changes,
                    });
                    continue;
                }
                handle.run_command(update).await.map_err(|e| {
                    Error::failed(format!("updating account {}: {}", a.name, code_of(&e)))
                })?;
                report.accounts.push(Change {
                    name: a.name.clone(),
                    action: "update",
                    changes,
                });
            }
        }
    }
    Ok(report)
}

/// The server's error code and name, never its message (it could quote the command).
fn code_of(e: &mongodb::error::Error) -> String {
    match e.kind.as_ref() {
        mongodb::error::ErrorKind::Command(c) => format!("code {} {}", c.code, c.code_name),
        _ => "the server refused or could not be reached".to_string(),
    }
}

/// Whether `name`/`pw` authenticates against `db` on the same server.
async fn can_log_in(server: &crate::cli::ServerArgs, name: &str, pw: &str, db: &str) -> bool {
    let Ok(mut options) = ClientOptions::parse(&server.uri).await else {
        return false;
    };
    if mongo::apply_tls(&mut options, server).is_err() {
        return false;
    }
    options.credential = Some(
        Credential::builder()
            .username(name.to_string())
            .password(pw.to_string())
            .source(db.to_string())
            .build(),
    );
    options.server_selection_timeout = Some(std::time::Duration::from_secs(5));
    let Ok(client) = Client::with_options(options) else {
        return false;
    };
    client
        .database(db)
        .run_command(doc! { "ping": 1 })
        .await
        .is_ok()
}

/// For `db-users list`.
pub async fn list_command(args: &crate::cli::ServerArgs, db: &str) -> Result<Vec<DbUser>, Error> {
    let conn = mongo::connect(args).await?;
    list(&conn, db).await
}
