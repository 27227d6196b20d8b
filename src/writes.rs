//! hcctl's writers and the dump that pauses them, through a small collection of the database
//! (`_hcctl_writes`).
//!
//! A `migrate` (and so every file of an `ingest`) registers itself before its first write: a
//! **writer** document whose lease it renews while it writes and which it deletes when it is
//! done. `backup dump` takes the **dump** document first, then waits until no live writer is
//! left, and holds it while it reads. A writer that finds a live dump document withdraws its
//! registration and waits for the dump to end (or gives up with exit 75, "try again later").
//! Each side writes its own document before it reads the other's, so on one server at least one
//! of the two sees the other: a writer never writes while a dump reads, and a dump never starts
//! while a writer writes. Claims are unique `_id` inserts, the only compare-and-set every
//! MongoDB-wire server isolates (see the ingest ledger). A process that dies holding a lease
//! stops renewing it: it counts for nothing once it has expired.

use std::time::{Duration, Instant, SystemTime};

use bson::{doc, DateTime, Document};
use mongodb::{Collection, Database};

use crate::error::Error;
use crate::mongo;

/// The collection of the leases, in the database written to.
pub const COLLECTION: &str = "_hcctl_writes";

/// How long a lease holds without renewal; renewed every third of it.
pub const LEASE: Duration = Duration::from_secs(90);

/// How often a waiting side looks again.
const POLL: Duration = Duration::from_secs(1);

/// This process, as the leases name it: HOST:PID.
pub fn this_process() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "localhost".into());
    format!("{host}:{}", std::process::id())
}

fn expiry() -> DateTime {
    DateTime::from_system_time(SystemTime::now() + LEASE)
}

fn now() -> DateTime {
    DateTime::now()
}

fn failed(action: &str, db: &str, e: &mongodb::error::Error) -> Error {
    Error::failed(format!(
        "{action} in {db}.{COLLECTION}: {}",
        mongo::describe(e)
    ))
}

/// A lease this process holds and renews in the background until [`Lease::end`] (or drop,
/// which only stops the renewal: the document then expires).
#[derive(Debug)]
pub struct Lease {
    coll: Collection<Document>,
    id: String,
    renewal: tokio::task::JoinHandle<()>,
}

/// The leases this process holds, for the signal handler ([`release_all`]).
static HELD: std::sync::Mutex<Vec<(Collection<Document>, String)>> =
    std::sync::Mutex::new(Vec::new());

fn held() -> std::sync::MutexGuard<'static, Vec<(Collection<Document>, String)>> {
    HELD.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Called by the signal handler before the process exits: delete the leases this process
/// holds, so a dump (or writer) waiting for them goes on at once; bounded at 5 s (a server that
/// does not answer leaves them to expire).
pub async fn release_all() {
    let leases = std::mem::take(&mut *held());
    for (coll, id) in leases {
        let _ = tokio::time::timeout(Duration::from_secs(5), coll.delete_one(doc! { "_id": &id }))
            .await;
    }
}

impl Lease {
    fn hold(coll: Collection<Document>, id: String) -> Lease {
        held().push((coll.clone(), id.clone()));
        let (c, i) = (coll.clone(), id.clone());
        let renewal = tokio::spawn(async move {
            loop {
                tokio::time::sleep(LEASE / 3).await;
                let renewed = c
                    .update_one(doc! { "_id": &i }, doc! { "$set": { "expires": expiry() } })
                    .await;
                if let Err(e) = renewed {
                    tracing::warn!(lease = %i, error = %mongo::describe(&e), "could not renew a lease");
                }
            }
        });
        Lease { coll, id, renewal }
    }

    /// Stop renewing and delete the document.
    pub async fn end(self) {
        self.renewal.abort();
        held().retain(|(_, id)| id != &self.id);
        if let Err(e) = self.coll.delete_one(doc! { "_id": &self.id }).await {
            tracing::warn!(lease = %self.id, error = %mongo::describe(&e), "could not delete a lease; it expires by itself");
        }
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.renewal.abort();
    }
}

/// The live dump lease, if any: who holds it.
async fn live_dump(coll: &Collection<Document>, db: &str) -> Result<Option<String>, Error> {
    let found = coll
        .find_one(doc! { "_id": "dump", "expires": { "$gt": now() } })
        .await
        .map_err(|e| failed("reading the dump lease", db, &e))?;
    Ok(found.map(|d| d.get_str("runner").unwrap_or("another process").to_string()))
}

/// Register as a writer of `db`, waiting up to `wait` for a dump in progress to end. Exit 75
/// (`Error::Busy`) when it has not ended by then.
pub async fn begin_writes(db: &Database, wait: Duration) -> Result<Lease, Error> {
    let coll = db.collection::<Document>(COLLECTION);
    let me = this_process();
    let mut suffix = [0u8; 6];
    getrandom::fill(&mut suffix)
        .map_err(|e| Error::failed(format!("internal: no random source: {e}")))?;
    let id = format!(
        "writer:{me}:{}",
        suffix
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    );
    let started = Instant::now();
    let mut said = false;
    loop {
        coll.insert_one(doc! {
            "_id": &id, "kind": "writer", "runner": &me, "started": now(), "expires": expiry(),
        })
        .await
        .map_err(|e| failed("registering as a writer", db.name(), &e))?;
        let Some(holder) = live_dump(&coll, db.name()).await? else {
            return Ok(Lease::hold(coll, id));
        };
        coll.delete_one(doc! { "_id": &id })
            .await
            .map_err(|e| failed("withdrawing a writer registration", db.name(), &e))?;
        if started.elapsed() >= wait {
            return Err(Error::Busy(format!(
                "a backup dump of {} by {holder} is in progress and did not end within {} s; \
                 nothing was written: run again once it has ended (or raise --dump-wait)",
                db.name(),
                wait.as_secs()
            )));
        }
        if !said {
            tracing::warn!(database = db.name(), dump = %holder, "waiting for a backup dump to end before writing");
            said = true;
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Take the dump lease of `db` and wait up to `wait` for hcctl's writers to finish; then no
/// hcctl writer writes until [`Lease::end`]. Exit 75 when writers are still at work by then;
/// exit 1 when another dump holds the lease.
pub async fn pause_writers(db: &Database, wait: Duration) -> Result<Lease, Error> {
    let coll = db.collection::<Document>(COLLECTION);
    let me = this_process();
    let lease = doc! { "_id": "dump", "kind": "dump", "runner": &me, "started": now(), "expires": expiry() };
    if let Err(e) = coll.insert_one(lease.clone()).await {
        if !mongo::is_duplicate_key(&e) {
            return Err(failed("taking the dump lease", db.name(), &e));
        }
        if let Some(holder) = live_dump(&coll, db.name()).await? {
            return Err(Error::failed(format!(
                "another backup dump of {} by {holder} is in progress; run again once it has ended",
                db.name()
            )));
        }
        // Its holder died: take over the expired lease.
        coll.delete_one(doc! { "_id": "dump", "expires": { "$lte": now() } })
            .await
            .map_err(|e| failed("removing an expired dump lease", db.name(), &e))?;
        coll.insert_one(lease).await.map_err(|e| {
            if mongo::is_duplicate_key(&e) {
                Error::failed(format!(
                    "another backup dump of {} started at the same time; run again once it has ended",
                    db.name()
                ))
            } else {
                failed("taking the dump lease", db.name(), &e)
            }
        })?;
    }
    let lease = Lease::hold(coll.clone(), "dump".into());
    let started = Instant::now();
    let mut said = false;
    loop {
        let writers = coll
            .count_documents(doc! { "kind": "writer", "expires": { "$gt": now() } })
            .await
            .map_err(|e| failed("counting writers", db.name(), &e))?;
        if writers == 0 {
            return Ok(lease);
        }
        if started.elapsed() >= wait {
            lease.end().await;
            return Err(Error::Busy(format!(
                "{writers} hcctl writer(s) (migrate or ingest) still writing to {} after {} s; \
                 nothing was dumped: run again later (or raise --writers-wait)",
                db.name(),
                wait.as_secs()
            )));
        }
        if !said {
            tracing::warn!(
                database = db.name(),
                writers,
                "waiting for hcctl's writers to finish before dumping"
            );
            said = true;
        }
        tokio::time::sleep(POLL).await;
    }
}
