//! The ingest ledger: what was loaded, by whom, and what is being loaded now, in a collection of
//! the target database (default `_ingest`).
//!
//! Two kinds of documents:
//! - one **file** document per file identity and target collection (`_id`: a hash of the
//!   target, the file's location and its content identity): state, attempts, runner, lease,
//!   started and finished times, last error, the file's report — what `ingest status` shows;
//! - one **claim** document per attempt at loading it (`_id`: `FILE_ID:N`). Claiming attempt N
//!   is inserting that document: the unique `_id` lets exactly one runner win it, on every
//!   MongoDB-wire server. (A conditional update would not do: FerretDB 1.x applies
//!   `update_one({_id, v: current}, …)` and `findAndModify` without isolation — measured here,
//!   4 clients made 918 "successful" compare-and-swaps for 482 increments — while a duplicate
//!   `_id` is always refused.)
//!
//! A file's state is its newest claim's: `claimed` (its runner renews the lease while it
//! loads), `done`, `failed`, or `released` (its runner was stopped and let go). A claim whose
//! lease expired (its runner died) counts as a failed attempt and is taken over; after
//! [`MAX_ATTEMPTS`] failed attempts since the last `ingest retry`, the file is parked.

use std::time::{Duration, SystemTime};

use bson::{doc, Bson, DateTime, Document};
use futures_util::TryStreamExt;
use mongodb::options::IndexOptions;
use mongodb::{Collection, Database, IndexModel};
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::source::{hex, SourceFile};
use crate::error::Error;
use crate::migrate::report::Report;
use crate::mongo;

/// Failed attempts (errors, or runners that died holding the claim) before a file is parked.
pub const MAX_ATTEMPTS: i64 = 3;

/// The ledger of one database, as one runner sees it.
#[derive(Clone, Debug)]
pub struct Ledger {
    db: Database,
    coll: Collection<Document>,
    name: String,
    runner: String,
    lease: Duration,
}

/// The outcome of trying to claim a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// This runner holds the file: load it, then [`Ledger::done`] or [`Ledger::failed`].
    Won(Held),
    /// Loaded before, with the same content.
    Done,
    /// Another runner holds a live claim on it.
    Busy { runner: String },
    /// Failed [`MAX_ATTEMPTS`] times; waits for `ingest retry`.
    Parked { attempts: i64, error: String },
}

/// A claim this runner holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    pub file_id: String,
    pub claim_id: String,
    pub attempt: i64,
    /// Failed attempts before this one (since the last retry), this one included.
    pub attempts: i64,
}

/// One file as `ingest status` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct Entry {
    pub file: String,
    pub target: String,
    pub state: String,
    pub attempts: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub runner: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lease_expires: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub started: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finished: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub report: Option<Report>,
}

fn at(t: SystemTime) -> DateTime {
    DateTime::from_system_time(t)
}

fn describe(action: &str, ledger: &str, e: &mongodb::error::Error) -> Error {
    Error::failed(format!(
        "{action} in the ledger {ledger}: {}",
        mongo::describe(e)
    ))
}

/// The ledger `_id` of a file's content loaded into `target` (`db.collection`).
pub fn file_id(target: &str, file: &SourceFile) -> String {
    let mut h = Sha256::new();
    for part in [target, &file.location, &file.identity.key()] {
        h.update(part.as_bytes());
        h.update([0]);
    }
    hex(&h.finalize()[..16])
}

impl Ledger {
    /// The ledger collection `name` of `db`, with its index (created when missing).
    pub async fn open(
        db: &Database,
        name: &str,
        runner: String,
        lease: Duration,
    ) -> Result<Ledger, Error> {
        mongo::validate_name("--ledger", name)?;
        let coll = db.collection::<Document>(name);
        let ledger = format!("{}.{name}", db.name());
        let index = IndexModel::builder()
            .keys(doc! { "kind": 1, "file_id": 1, "attempt": -1 })
            .options(IndexOptions::builder().name("claims".to_string()).build())
            .build();
        coll.create_index(index)
            .await
            .map_err(|e| describe("creating the claims index", &ledger, &e))?;
        Ok(Ledger {
            db: db.clone(),
            coll,
            name: ledger,
            runner,
            lease,
        })
    }

    /// The database the ledger (and what it records) is in.
    pub fn db(&self) -> &Database {
        &self.db
    }

    /// `db.collection` of the ledger.
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn runner(&self) -> &str {
        &self.runner
    }

    async fn newest_claim(&self, file_id: &str) -> Result<Option<Document>, Error> {
        self.coll
            .find_one(doc! { "kind": "claim", "file_id": file_id })
            .sort(doc! { "attempt": -1 })
            .await
            .map_err(|e| describe("reading claims", &self.name, &e))
    }

    /// Failed attempts since the last retry: claims failed, or claimed and expired.
    async fn failures(&self, file_id: &str, after: i64, now: DateTime) -> Result<i64, Error> {
        let n = self
            .coll
            .count_documents(doc! {
                "kind": "claim",
                "file_id": file_id,
                "attempt": { "$gt": after },
                "$or": [
                    { "state": "failed" },
                    { "state": "claimed", "lease_expires": { "$lte": now } },
                ],
            })
            .await
            .map_err(|e| describe("counting attempts", &self.name, &e))?;
        Ok(i64::try_from(n).unwrap_or(i64::MAX))
    }

    /// Whether `file` (this content) is recorded as loaded into `target`: a read, no write.
    pub async fn is_done(&self, file: &SourceFile, target: &str) -> Result<bool, Error> {
        let summary = self
            .coll
            .find_one(doc! { "_id": file_id(target, file), "state": "done" })
            .projection(doc! { "_id": 1 })
            .await
            .map_err(|e| describe("reading a file", &self.name, &e))?;
        Ok(summary.is_some())
    }

    /// Try to claim `file` for loading into `target`.
    pub async fn claim(&self, file: &SourceFile, target: &str) -> Result<Claim, Error> {
        let id = file_id(target, file);
        let now_t = SystemTime::now();
        let now = at(now_t);
        let identity = bson::to_bson(&file.identity)
            .map_err(|e| Error::failed(format!("internal: file identity: {e}")))?;
        let created = self
            .coll
            .insert_one(doc! {
                "_id": &id,
                "kind": "file",
                "file": &file.location,
                "name": &file.name,
                "identity": identity,
                "target": target,
                "state": "new",
                "attempts": 0i64,
                "retried_after": 0i64,
                "first_seen": now,
            })
            .await;
        if let Err(e) = created {
            if !mongo::is_duplicate_key(&e) {
                return Err(describe("recording a file", &self.name, &e));
            }
        }
        let summary = self
            .coll
            .find_one(doc! { "_id": &id })
            .await
            .map_err(|e| describe("reading a file", &self.name, &e))?
            .unwrap_or_default();
        let retried_after = summary.get_i64("retried_after").unwrap_or(0);

        let newest = self.newest_claim(&id).await?;
        let next = match &newest {
            None => 1,
            Some(c) => {
                let state = c.get_str("state").unwrap_or("");
                let expires = c.get_datetime("lease_expires").ok().copied();
                match state {
                    "done" => return Ok(Claim::Done),
                    "claimed" if expires.is_some_and(|t| t > now) => {
                        return Ok(Claim::Busy {
                            runner: c.get_str("runner").unwrap_or("?").to_string(),
                        })
                    }
                    _ => c.get_i64("attempt").unwrap_or(0) + 1,
                }
            }
        };
        let failures = self.failures(&id, retried_after, now).await?;
        if failures >= MAX_ATTEMPTS {
            let error = summary
                .get_str("last_error")
                .unwrap_or("its runner stopped without finishing (lease expired)")
                .to_string();
            if summary.get_str("state").unwrap_or("") != "parked" {
                self.set_summary(
                    &id,
                    doc! { "state": "parked", "attempts": failures, "last_error": &error },
                )
                .await?;
            }
            return Ok(Claim::Parked {
                attempts: failures,
                error,
            });
        }
        let claim_id = format!("{id}:{next}");
        let expires = at(now_t + self.lease);
        let inserted = self
            .coll
            .insert_one(doc! {
                "_id": &claim_id,
                "kind": "claim",
                "file_id": &id,
                "attempt": next,
                "runner": &self.runner,
                "state": "claimed",
                "started": now,
                "lease_expires": expires,
            })
            .await;
        match inserted {
            Ok(_) => {}
            Err(e) if mongo::is_duplicate_key(&e) => {
                return Ok(Claim::Busy {
                    runner: "another runner (claimed it just now)".into(),
                })
            }
            Err(e) => return Err(describe("claiming a file", &self.name, &e)),
        }
        self.set_summary(
            &id,
            doc! {
                "state": "claimed",
                "attempts": failures + 1,
                "runner": &self.runner,
                "started": now,
                "lease_expires": expires,
                "finished": Bson::Null,
            },
        )
        .await?;
        Ok(Claim::Won(Held {
            file_id: id,
            claim_id,
            attempt: next,
            attempts: failures + 1,
        }))
    }

    async fn set_summary(&self, file_id: &str, fields: Document) -> Result<(), Error> {
        self.coll
            .update_one(doc! { "_id": file_id }, doc! { "$set": fields })
            .await
            .map_err(|e| describe("updating a file", &self.name, &e))?;
        Ok(())
    }

    async fn set_claim(&self, held: &Held, fields: Document) -> Result<(), Error> {
        self.coll
            .update_one(doc! { "_id": &held.claim_id }, doc! { "$set": fields })
            .await
            .map_err(|e| describe("updating a claim", &self.name, &e))?;
        Ok(())
    }

    /// Extend the lease. `false` when another runner has since claimed the file (this claim
    /// had expired): this runner's load goes on, harmlessly — documents are content-addressed —
    /// but the file is no longer its to mark.
    pub async fn renew(&self, held: &Held) -> Result<bool, Error> {
        let newer = self
            .coll
            .find_one(doc! {
                "kind": "claim",
                "file_id": &held.file_id,
                "attempt": { "$gt": held.attempt },
            })
            .await
            .map_err(|e| describe("reading claims", &self.name, &e))?;
        if newer.is_some() {
            return Ok(false);
        }
        // The summary first: a runner that dies between the two writes leaves the summary's
        // lease the later one, so `ingest status` never shows a lease as expired while the claim
        // still holds it (a runner arriving then would find the file busy).
        let expires = at(SystemTime::now() + self.lease);
        self.set_summary(&held.file_id, doc! { "lease_expires": expires })
            .await?;
        self.set_claim(held, doc! { "lease_expires": expires })
            .await?;
        Ok(true)
    }

    pub async fn done(&self, held: &Held, report: &Report) -> Result<(), Error> {
        let now = at(SystemTime::now());
        let report = bson::to_bson(report)
            .map_err(|e| Error::failed(format!("internal: report as BSON: {e}")))?;
        self.set_claim(held, doc! { "state": "done", "finished": now })
            .await?;
        self.set_summary(
            &held.file_id,
            doc! {
                "state": "done",
                "finished": now,
                "report": report,
                "last_error": Bson::Null,
                "lease_expires": Bson::Null,
            },
        )
        .await
    }

    /// Record a failed attempt; the file is parked when it was the last one allowed.
    pub async fn failed(&self, held: &Held, error: &str) -> Result<(), Error> {
        let now = at(SystemTime::now());
        self.set_claim(
            held,
            doc! { "state": "failed", "finished": now, "error": error },
        )
        .await?;
        let state = if held.attempts >= MAX_ATTEMPTS {
            "parked"
        } else {
            "failed"
        };
        self.set_summary(
            &held.file_id,
            doc! {
                "state": state,
                "finished": now,
                "last_error": error,
                "lease_expires": Bson::Null,
            },
        )
        .await
    }

    /// Let go of a claim without an outcome (the runner is stopping): the file is claimable at
    /// once, and the attempt does not count.
    pub async fn release(&self, held: &Held) -> Result<(), Error> {
        let now = at(SystemTime::now());
        self.set_claim(
            held,
            doc! { "state": "released", "lease_expires": now, "finished": now },
        )
        .await?;
        self.set_summary(
            &held.file_id,
            doc! { "state": "released", "attempts": held.attempts - 1, "lease_expires": Bson::Null },
        )
        .await
    }

    /// Every file of the ledger, first seen first.
    pub async fn entries(&self) -> Result<Vec<Entry>, Error> {
        let mut cursor = self
            .coll
            .find(doc! { "kind": "file" })
            .sort(doc! { "first_seen": 1, "_id": 1 })
            .await
            .map_err(|e| describe("reading files", &self.name, &e))?;
        let now = DateTime::now();
        let mut entries = Vec::new();
        while let Some(d) = cursor
            .try_next()
            .await
            .map_err(|e| describe("reading files", &self.name, &e))?
        {
            let text = |k: &str| d.get_str(k).ok().map(str::to_string);
            let time = |k: &str| {
                d.get_datetime(k)
                    .ok()
                    .and_then(|t| t.try_to_rfc3339_string().ok())
            };
            let mut state = text("state").unwrap_or_default();
            let expired = d
                .get_datetime("lease_expires")
                .ok()
                .is_some_and(|t| *t <= now);
            if state == "claimed" && expired {
                // Its runner stopped without finishing: the next run takes it over.
                state = "claimed (lease expired)".into();
            }
            let report = d
                .get_document("report")
                .ok()
                .and_then(|r| bson::from_document::<Report>(r.clone()).ok());
            entries.push(Entry {
                file: text("file").unwrap_or_default(),
                target: text("target").unwrap_or_default(),
                state,
                attempts: d.get_i64("attempts").unwrap_or(0),
                runner: text("runner"),
                lease_expires: time("lease_expires"),
                started: time("started"),
                finished: time("finished"),
                last_error: text("last_error"),
                report,
            });
        }
        Ok(entries)
    }

    /// Make the failed or parked entries of `file` eligible again. Returns how many.
    pub async fn retry(&self, file: &str) -> Result<u64, Error> {
        let mut cursor = self
            .coll
            .find(doc! { "kind": "file", "file": file, "state": { "$in": ["failed", "parked"] } })
            .await
            .map_err(|e| describe("reading files", &self.name, &e))?;
        let mut ids = Vec::new();
        while let Some(d) = cursor
            .try_next()
            .await
            .map_err(|e| describe("reading files", &self.name, &e))?
        {
            if let Ok(id) = d.get_str("_id") {
                ids.push(id.to_string());
            }
        }
        for id in &ids {
            let newest = self
                .newest_claim(id)
                .await?
                .and_then(|c| c.get_i64("attempt").ok())
                .unwrap_or(0);
            self.set_summary(
                id,
                doc! { "retried_after": newest, "attempts": 0i64, "state": "retry" },
            )
            .await?;
        }
        Ok(ids.len() as u64)
    }
}
