//! End users of the application (staff who query the data), in the `app_users` collection: a
//! unique name, a role, and only an argon2id hash of the password (bcrypt hashes from the old
//! system are verified and replaced by argon2id on the next successful verify).

use bson::{doc, DateTime, Document};
use mongodb::options::IndexOptions;
use mongodb::{Collection, IndexModel};
use serde::Serialize;

use super::passwords::{self, Verdict};
use crate::error::Error;

pub const COLLECTION: &str = "app_users";
const NAME_INDEX: &str = "name_unique";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Reader,
    Writer,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Reader => "reader",
            Role::Writer => "writer",
        }
    }
}

/// What `users list` shows: never a password or hash, only which algorithm protects it.
#[derive(Debug, Clone, Serialize)]
pub struct UserInfo {
    pub name: String,
    pub role: String,
    pub hash_algorithm: String,
}

pub struct Users {
    coll: Collection<Document>,
}

/// Names: 1-64 characters of letters, digits, `.`, `_`, `-`, `@`.
pub fn check_name(name: &str) -> Result<(), Error> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-@".contains(c));
    if ok {
        Ok(())
    } else {
        Err(Error::usage(format!(
            "'{name}' is not a user name: 1-64 characters of letters, digits, . _ - @"
        )))
    }
}

fn failed(what: &str, e: mongodb::error::Error) -> Error {
    Error::failed(format!(
        "{what} in {COLLECTION}: {}",
        crate::mongo::describe(&e)
    ))
}

impl Users {
    /// The collection, with its unique index on `name` (created when missing).
    pub async fn open(db: &mongodb::Database) -> Result<Users, Error> {
        let coll = db.collection::<Document>(COLLECTION);
        let existing = coll.list_index_names().await.unwrap_or_default();
        if !existing.iter().any(|n| n == NAME_INDEX) {
            coll.create_index(
                IndexModel::builder()
                    .keys(doc! { "name": 1 })
                    .options(
                        IndexOptions::builder()
                            .name(NAME_INDEX.to_string())
                            .unique(true)
                            .build(),
                    )
                    .build(),
            )
            .await
            .map_err(|e| failed("creating the unique index on name", e))?;
        }
        Ok(Users { coll })
    }

    /// Add a user. The password rules are checked before hashing; an existing name is an error.
    pub async fn add(&self, name: &str, role: Role, password: &str) -> Result<(), Error> {
        check_name(name)?;
        let hash = passwords::hash(password)?;
        let now = DateTime::now();
        let result = self
            .coll
            .insert_one(doc! {
                "name": name,
                "role": role.as_str(),
                "password_hash": hash,
                "created_at": now,
                "password_changed_at": now,
            })
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) => match duplicate_key_message(&e) {
                Some(message) => Err(self.refused_duplicate(name, message).await),
                None => Err(failed("adding a user", e)),
            },
        }
    }

    /// `add` refused with a duplicate key: the name is taken when the conflict is in the name's
    /// unique index; one in any other unique index is an error naming that index.
    async fn refused_duplicate(&self, name: &str, message: &str) -> Error {
        let index = crate::mongo::duplicate_key_index(message);
        let taken = match index {
            Some(index) => index == NAME_INDEX,
            // FerretDB names no index: the name is taken when a user has it.
            None => match self.coll.find_one(doc! { "name": name }).await {
                Ok(user) => user.is_some(),
                Err(e) => return failed("looking a user up", e),
            },
        };
        if taken {
            return Error::usage(format!(
                "user {name} already exists (change the password with `hcctl users passwd {name}`)"
            ));
        }
        let indexes = match index {
            Some(index) => vec![index.to_string()],
            None => match crate::mongo::unique_indexes(&self.coll).await {
                Ok(all) => all.into_iter().filter(|i| i != NAME_INDEX).collect(),
                Err(e) => return e,
            },
        };
        Error::failed(format!(
            "adding user {name}: the server refused it for a conflict in {} of {COLLECTION} \
             (code {} DuplicateKey), not because the name is taken; nothing was stored; drop or \
             change that index and try again",
            crate::mongo::unique_index_phrase(&indexes),
            crate::mongo::DUPLICATE_KEY
        ))
    }

    /// True when the name and password match. Unknown names run the same hash computation and
    /// give the same answer as a wrong password. A bcrypt (or weaker) hash that matches is
    /// replaced by an argon2id one.
    pub async fn verify(&self, name: &str, password: &str) -> Result<bool, Error> {
        let user = self
            .coll
            .find_one(doc! { "name": name })
            .await
            .map_err(|e| failed("looking a user up", e))?;
        let stored = user
            .as_ref()
            .and_then(|u| u.get_str("password_hash").ok())
            .map(str::to_string);
        let verdict = passwords::verify_user(password, stored.as_deref());
        match (user, verdict) {
            (Some(_), Verdict::Match) => Ok(true),
            (Some(_), Verdict::MatchNeedsRehash) => {
                // The password is right: upgrade the hash. Policy is not re-checked here (a legacy
                // password may be short; it still deserves the stronger hash).
                let salt_hash = passwords::hash(password).or_else(|_| {
                    // Shorter than today's rule: hash it anyway, without the policy check.
                    passwords::hash_unchecked(password)
                })?;
                let upgraded = self
                    .coll
                    .update_one(
                        doc! { "name": name },
                        doc! { "$set": { "password_hash": salt_hash, "password_changed_at": DateTime::now() } },
                    )
                    .await;
                // With the reader account (enough to verify) the upgrade is refused: the password
                // is still right; the hash is upgraded by the next verify with a writer account.
                match upgraded {
                    Ok(_) => tracing::info!(user = name, "password hash upgraded to argon2id"),
                    Err(_) => tracing::warn!(
                        user = name,
                        "password verified, but its legacy hash could not be upgraded with this \
                         account (read-only?); verify once with the writer account"
                    ),
                }
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    /// Set a new password for an existing user.
    pub async fn passwd(&self, name: &str, password: &str) -> Result<(), Error> {
        let hash = passwords::hash(password)?;
        let r = self
            .coll
            .update_one(
                doc! { "name": name },
                doc! { "$set": { "password_hash": hash, "password_changed_at": DateTime::now() } },
            )
            .await
            .map_err(|e| failed("changing a password", e))?;
        if r.matched_count == 0 {
            return Err(Error::usage(format!("no user named {name}")));
        }
        Ok(())
    }

    pub async fn remove(&self, name: &str) -> Result<(), Error> {
        let r = self
            .coll
            .delete_one(doc! { "name": name })
            .await
            .map_err(|e| failed("removing a user", e))?;
        if r.deleted_count == 0 {
            return Err(Error::usage(format!("no user named {name}")));
        }
        Ok(())
    }

    pub async fn list(&self) -> Result<Vec<UserInfo>, Error> {
        use futures_util::TryStreamExt;
        let docs: Vec<Document> = self
            .coll
            .find(doc! {})
            .projection(doc! { "name": 1, "role": 1, "password_hash": 1 })
            .sort(doc! { "name": 1 })
            .await
            .map_err(|e| failed("listing users", e))?
            .try_collect()
            .await
            .map_err(|e| failed("listing users", e))?;
        Ok(docs
            .iter()
            .map(|d| {
                let hash = d.get_str("password_hash").unwrap_or("");
                UserInfo {
                    name: d.get_str("name").unwrap_or("").to_string(),
                    role: d.get_str("role").unwrap_or("").to_string(),
                    hash_algorithm: algorithm_of(hash).to_string(),
                }
            })
            .collect())
    }
}

fn algorithm_of(hash: &str) -> &'static str {
    if hash.starts_with("$argon2id$") {
        "argon2id"
    } else if hash.starts_with("$2") {
        "bcrypt (upgraded at next verify)"
    } else {
        "unknown"
    }
}

/// The server's message of a duplicate-key write error (it may quote the key: never shown).
fn duplicate_key_message(e: &mongodb::error::Error) -> Option<&str> {
    use mongodb::error::{ErrorKind, WriteFailure};
    match e.kind.as_ref() {
        ErrorKind::Write(WriteFailure::WriteError(w)) if w.code == crate::mongo::DUPLICATE_KEY => {
            Some(&w.message)
        }
        _ => None,
    }
}
