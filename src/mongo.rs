//! Connecting to MongoDB: one place that builds the client, fails fast when the server cannot
//! be reached, and keeps credentials out of every message.

use std::time::Duration;

use futures_util::TryStreamExt;
use mongodb::bson::doc;
use mongodb::options::{ClientOptions, Tls, TlsOptions};
use mongodb::{Client, Collection, Database};

use crate::cli::{ConnectionArgs, ServerArgs};
use crate::error::Error;

/// A connected database handle plus what is safe to print about it.
pub struct Connection {
    pub client: Client,
    pub db: Database,
    /// The URI with its password replaced by `****`.
    pub display_uri: String,
}

/// [`connect`], after checking the collection name too.
pub async fn connect_collection(args: &ConnectionArgs) -> Result<Connection, Error> {
    validate_name("collection", &args.collection)?;
    connect(&args.server).await
}

/// Connect and prove the server answers (and accepts our credentials) within `connect_timeout`.
pub async fn connect(args: &ServerArgs) -> Result<Connection, Error> {
    let display_uri = redact_uri(&args.uri);
    let secrets = uri_secrets(&args.uri);
    let scrub = |e: &dyn std::fmt::Display| scrub_secrets(&e.to_string(), &secrets);

    validate_name("database", &args.db)?;

    let mut options = ClientOptions::parse(&args.uri)
        .await
        .map_err(|e| Error::usage(format!("invalid MongoDB URI {display_uri}: {}", scrub(&e))))?;
    options.app_name = Some("hcctl".into());
    apply_tls(&mut options, args)?;
    options.connect_timeout = Some(args.connect_timeout);
    options.server_selection_timeout = Some(args.connect_timeout);
    let client = Client::with_options(options)
        .map_err(|e| Error::usage(format!("invalid MongoDB URI {display_uri}: {}", scrub(&e))))?;

    // The driver connects lazily; a ping forces server selection and authentication now, so an
    // unreachable server or a wrong password fails in seconds with one clear line.
    let admin = client.database("admin");
    let ping = admin.run_command(doc! { "ping": 1 });
    match tokio::time::timeout(args.connect_timeout + Duration::from_secs(2), ping).await {
        Ok(Ok(_)) => {}
        Ok(Err(e)) if tls_failure(&e.to_string()).is_some() => {
            let cause = tls_failure(&e.to_string()).unwrap_or_default();
            return Err(Error::failed(format!(
                "TLS handshake with {display_uri} failed: {cause}; the server's certificate is not \
                 trusted by the CA given (--tls-ca-file / tlsCAFile) or does not name this host"
            )));
        }
        Ok(Err(e)) => {
            return Err(Error::failed(scrub(&connect_failure(
                &e,
                &display_uri,
                args.connect_timeout,
            ))))
        }
        Err(_) => {
            return Err(Error::failed(format!(
                "MongoDB at {display_uri} did not answer within {:?} (is it running? raise --connect-timeout?)",
                args.connect_timeout
            )))
        }
    }
    tracing::info!(uri = %display_uri, db = %args.db, "connected");
    let db = client.database(&args.db);
    Ok(Connection {
        client,
        db,
        display_uri,
    })
}

/// Why the first contact failed, in one line without the driver's topology dump: no server
/// answered (and the socket error of the first one), the credentials were refused, or the
/// server's error by code.
fn connect_failure(e: &mongodb::error::Error, uri: &str, timeout: Duration) -> String {
    use mongodb::error::ErrorKind;
    match e.kind.as_ref() {
        ErrorKind::ServerSelection { message, .. } => {
            let cause = message
                .split_once("I/O error: ")
                .map(|(_, rest)| {
                    let end = rest.find([',', '}']).unwrap_or(rest.len());
                    let cause = rest[..end].trim();
                    cause
                        .split(" (os error")
                        .next()
                        .unwrap_or(cause)
                        .to_lowercase()
                })
                .unwrap_or_else(|| "no answer".to_string());
            format!(
                "cannot connect to MongoDB at {uri}: {cause} (no server answered within {}; is \
                 it running, and are the URI's host and port right? `scripts/stack up` starts a \
                 local one)",
                crate::output::duration(timeout)
            )
        }
        ErrorKind::Authentication { message, .. } => format!(
            "authentication failed at {uri} ({message}): check the user and password in the URI \
             (HCCTL_MONGODB_URI) and the authSource"
        ),
        _ => format!("cannot use MongoDB at {uri}: {}", describe(e)),
    }
}

/// `--tls-ca-file` / `--tls-cert-key-file` turn TLS on (merged with TLS settings of the URI).
/// A driver error in one line, without the server's raw reply (which the driver's own message
/// appends, and which can quote document values): a command error by its code and name, with
/// what to do for the common ones; anything else by the driver's description.
pub fn describe(e: &mongodb::error::Error) -> String {
    match e.kind.as_ref() {
        mongodb::error::ErrorKind::Command(c) => {
            let hint = match c.code {
                13 => {
                    "; this connection may not run it: put the credentials of an account with the \
                     needed role in the URI (HCCTL_MONGODB_URI; the writer account for migrate)"
                }
                18 => "; authentication failed: check the user and password in the URI",
                _ => "",
            };
            format!("server error {} ({}){hint}", c.code, c.code_name)
        }
        other => other.to_string(),
    }
}

/// MongoDB's duplicate-key error code.
pub const DUPLICATE_KEY: i32 = 11000;

/// The name of the `_id` index, on MongoDB and FerretDB alike.
pub const ID_INDEX: &str = "_id_";

/// Whether a single-document write was refused for a duplicate key (a unique `_id` claim lost).
pub fn is_duplicate_key(e: &mongodb::error::Error) -> bool {
    use mongodb::error::{ErrorKind, WriteFailure};
    match &*e.kind {
        ErrorKind::Write(WriteFailure::WriteError(w)) => w.code == DUPLICATE_KEY,
        ErrorKind::Command(c) => c.code == DUPLICATE_KEY,
        _ => false,
    }
}

/// The index a duplicate-key error names, read from the server's message: MongoDB writes
/// `E11000 duplicate key error collection: db.coll index: NAME dup key: { … }` (before 3.2,
/// `… index: db.coll.$NAME dup key: …`). Only the part before `dup key` is read: the key is a
/// patient value and is never kept. `None` when the message names no index, as FerretDB 1.x's
/// `E11000 duplicate key error collection: db.coll` does (nor does it send `keyPattern`).
pub fn duplicate_key_index(message: &str) -> Option<&str> {
    let head = message.split(" dup key").next().unwrap_or("");
    let (_, name) = head.rsplit_once(" index: ")?;
    let name = name.trim();
    let name = name.rsplit_once(".$").map_or(name, |(_, n)| n);
    (!name.is_empty()).then_some(name)
}

/// The names of a collection's unique indexes other than `_id_`.
pub async fn unique_indexes<T: Send + Sync>(coll: &Collection<T>) -> Result<Vec<String>, Error> {
    let failed = |e: mongodb::error::Error| {
        Error::failed(format!(
            "listing the indexes of {}: {}",
            coll.name(),
            describe(&e)
        ))
    };
    let models: Vec<mongodb::IndexModel> = coll
        .list_indexes()
        .await
        .map_err(failed)?
        .try_collect()
        .await
        .map_err(failed)?;
    Ok(models
        .into_iter()
        .filter_map(|m| m.options)
        .filter(|o| o.unique == Some(true))
        .filter_map(|o| o.name)
        .filter(|n| n != ID_INDEX)
        .collect())
}

/// "the unique index x" or "one of the unique indexes x, y (the server did not say which)".
pub fn unique_index_phrase(names: &[String]) -> String {
    match names {
        [] => "a unique index the server did not name".to_string(),
        [one] => format!("the unique index {one}"),
        many => format!(
            "one of the unique indexes {} (the server did not say which)",
            many.join(", ")
        ),
    }
}

pub fn apply_tls(options: &mut ClientOptions, args: &ServerArgs) -> Result<(), Error> {
    if args.tls_ca_file.is_none() && args.tls_cert_key_file.is_none() {
        return Ok(());
    }
    for path in [&args.tls_ca_file, &args.tls_cert_key_file]
        .into_iter()
        .flatten()
    {
        if !path.is_file() {
            return Err(Error::usage(format!(
                "TLS file {} does not exist or is not a file",
                path.display()
            )));
        }
    }
    let mut tls = match options.tls.take() {
        Some(Tls::Enabled(t)) => t,
        _ => TlsOptions::default(),
    };
    if let Some(ca) = &args.tls_ca_file {
        tls.ca_file_path = Some(ca.clone());
    }
    if let Some(cert) = &args.tls_cert_key_file {
        tls.cert_key_file_path = Some(cert.clone());
    }
    options.tls = Some(Tls::Enabled(tls));
    Ok(())
}

/// The certificate problem in a driver error ("invalid peer certificate: UnknownIssuer"), if any.
fn tls_failure(msg: &str) -> Option<String> {
    let start = msg
        .find("invalid peer certificate")
        .or_else(|| msg.find("certificate"))?;
    let end = msg[start..]
        .find([',', '}'])
        .map_or(msg.len(), |i| start + i);
    Some(msg[start..end].trim().to_string())
}

pub fn validate_name(what: &str, name: &str) -> Result<(), Error> {
    if name.is_empty()
        || name.contains(['\0', '$'])
        || (what == "database" && name.contains(['/', '\\', '.', ' ', '"']))
    {
        return Err(Error::usage(format!(
            "'{name}' is not a valid MongoDB {what} name"
        )));
    }
    Ok(())
}

/// Split a URI into (scheme://, userinfo, rest) when it has credentials.
fn split_userinfo(uri: &str) -> Option<(&str, &str, &str)> {
    let scheme_end = uri.find("://")? + 3;
    let after = &uri[scheme_end..];
    // userinfo ends at the last '@': a password that was not percent-encoded may contain '/',
    // '?' or '@' itself and must still be hidden. (An '@' in the query makes more than the
    // password hidden: over-hidden, never leaked.)
    let at = after.rfind('@')?;
    Some((&uri[..scheme_end], &after[..at], &after[at + 1..]))
}

/// The password in a URI as written, if any.
fn uri_password(uri: &str) -> Option<String> {
    let (_, userinfo, _) = split_userinfo(uri)?;
    let (_, pw) = userinfo.split_once(':')?;
    (!pw.is_empty()).then(|| pw.to_string())
}

/// URI options whose values are credentials: a client key's password, and the mechanism
/// properties (which can carry an AWS session token).
const SECRET_OPTIONS: [&str; 3] = [
    "tlscertificatekeyfilepassword",
    "sslclientcertificatekeypassword",
    "authmechanismproperties",
];

fn is_secret_option(key: &str) -> bool {
    SECRET_OPTIONS.contains(&key.to_ascii_lowercase().as_str())
}

/// The query part of a URI, `key=value` pairs.
fn query_pairs(uri: &str) -> impl Iterator<Item = (&str, &str)> {
    let query = uri.rsplit_once('?').map_or("", |(_, q)| q);
    query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .filter(|(_, v)| !v.is_empty())
}

/// Every credential a URI holds (the password, secret option values): scrubbed from messages.
fn uri_secrets(uri: &str) -> Vec<String> {
    let mut secrets: Vec<String> = uri_password(uri).into_iter().collect();
    secrets.extend(
        query_pairs(uri)
            .filter(|(k, _)| is_secret_option(k))
            .map(|(_, v)| v.to_string()),
    );
    secrets
}

/// `mongodb://writer:s3cret@host/db?tlsCertificateKeyFilePassword=k` →
/// `mongodb://writer:****@host/db?tlsCertificateKeyFilePassword=****`.
pub fn redact_uri(uri: &str) -> String {
    let shown = match split_userinfo(uri) {
        Some((scheme, userinfo, rest)) => {
            let user = userinfo.split_once(':').map_or(userinfo, |(u, _)| u);
            let masked = if userinfo.contains(':') { ":****" } else { "" };
            format!("{scheme}{user}{masked}@{rest}")
        }
        None => uri.to_string(),
    };
    let Some((base, query)) = shown.rsplit_once('?') else {
        return shown;
    };
    let query: Vec<String> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((k, _)) if is_secret_option(k) => format!("{k}=****"),
            _ => pair.to_string(),
        })
        .collect();
    format!("{base}?{}", query.join("&"))
}

/// Remove secrets from a message (the driver may echo parts of the URI in its errors).
fn scrub_secrets(msg: &str, secrets: &[String]) -> String {
    secrets
        .iter()
        .filter(|s| !s.is_empty())
        .fold(msg.to_string(), |m, s| m.replace(s.as_str(), "****"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicate_key_index_is_read_from_the_message_without_the_key_value() {
        // MongoDB 4.2+ and 3.2–4.0 (the key value is patient data: never part of the answer).
        let modern = "E11000 duplicate key error collection: healthcare.patients index: \
                      medication_1 dup key: { Medication: \"Paracetamol\" }";
        assert_eq!(duplicate_key_index(modern), Some("medication_1"));
        let id = "E11000 duplicate key error collection: h.p index: _id_ dup key: { _id: \"ab\" }";
        assert_eq!(duplicate_key_index(id), Some(ID_INDEX));
        let old = "E11000 duplicate key error index: h.p.$_id_  dup key: { : \"ab\" }";
        assert_eq!(duplicate_key_index(old), Some(ID_INDEX));
        // A value that looks like an index name is after "dup key": never read.
        let tricky = "E11000 duplicate key error collection: h.p index: name_unique dup key: { \
                      name: \"x index: _id_\" }";
        assert_eq!(duplicate_key_index(tricky), Some("name_unique"));
        // FerretDB 1.24 (read from its reply): no index, no key.
        assert_eq!(
            duplicate_key_index("E11000 duplicate key error collection: h.p"),
            None
        );
        assert_eq!(duplicate_key_index(""), None);
    }

    #[test]
    fn redacts_passwords_in_uris() {
        assert_eq!(
            redact_uri("mongodb://writer:s3cr@t@db.example:27017/healthcare?tls=true"),
            "mongodb://writer:****@db.example:27017/healthcare?tls=true"
        );
        assert_eq!(
            redact_uri("mongodb+srv://reader:x@cluster0/?authSource=admin"),
            "mongodb+srv://reader:****@cluster0/?authSource=admin"
        );
        assert_eq!(
            redact_uri("mongodb://127.0.0.1:27017"),
            "mongodb://127.0.0.1:27017"
        );
        assert_eq!(redact_uri("mongodb://user@host/"), "mongodb://user@host/");
        // Passwords that were not percent-encoded (base64 has '/' and '+').
        assert_eq!(
            redact_uri("mongodb://writer:Ab/c+d9=@db:27017/?authSource=admin"),
            "mongodb://writer:****@db:27017/?authSource=admin"
        );
        assert_eq!(
            redact_uri("mongodb://writer:a?b@c/d@db/healthcare"),
            "mongodb://writer:****@db/healthcare"
        );
        assert_eq!(redact_uri("not a uri"), "not a uri");
    }

    #[test]
    fn finds_the_password_to_scrub() {
        assert_eq!(uri_password("mongodb://w:pw@h/").as_deref(), Some("pw"));
        assert_eq!(uri_password("mongodb://w@h/"), None);
        assert_eq!(
            uri_password("mongodb://w:Ab/c+d9=@h/?x=1").as_deref(),
            Some("Ab/c+d9=")
        );
        assert_eq!(
            scrub_secrets("auth pw failed", &["pw".to_string()]),
            "auth **** failed"
        );
    }

    #[test]
    fn credentials_in_uri_options_are_hidden_too() {
        let uri = "mongodb://w:pw@h/?tls=true&tlsCertificateKeyFilePassword=KeyPw1&\
                   authMechanismProperties=AWS_SESSION_TOKEN:Tok2&appName=x";
        let shown = redact_uri(uri);
        assert_eq!(
            shown,
            "mongodb://w:****@h/?tls=true&tlsCertificateKeyFilePassword=****&\
             authMechanismProperties=****&appName=x"
        );
        let secrets = uri_secrets(uri);
        assert_eq!(secrets, ["pw", "KeyPw1", "AWS_SESSION_TOKEN:Tok2"]);
        assert_eq!(
            scrub_secrets("bad option KeyPw1 and AWS_SESSION_TOKEN:Tok2", &secrets),
            "bad option **** and ****"
        );
    }
}
