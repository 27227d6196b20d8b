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
//! stops renewing it: it counts for nothing once it has expired. Lease times are the server's
//! (its `hello` clock), and each lease document carries its holder's random token, so an old
//! holder never extends or deletes a lease someone else has taken over.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

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

/// The database server's clock, as this process reads it: every lease time is the server's, so
/// runners on machines whose clocks disagree (a laptop, ECS tasks) still agree on what expired.
#[derive(Debug, Clone, Copy, Default)]
pub struct Clock {
    /// The server's time minus this machine's, in milliseconds.
    pub offset_ms: i64,
}

impl Clock {
    /// The offset from the server's `hello` (`localTime`), halfway through the round trip; 0
    /// (this machine's clock) when the server does not say.
    pub async fn of(db: &Database) -> Clock {
        let before = DateTime::now().timestamp_millis();
        let hello = db.run_command(doc! { "hello": 1 }).await;
        let after = DateTime::now().timestamp_millis();
        let server = hello
            .ok()
            .and_then(|h| h.get_datetime("localTime").ok().copied());
        match server {
            Some(t) => Clock::from_reading(before, t.timestamp_millis(), after),
            None => {
                tracing::debug!("the server reports no localTime: leases use this machine's clock");
                Clock::default()
            }
        }
    }

    /// The offset of a server that said `server` between this machine's `before` and `after`.
    pub fn from_reading(before: i64, server: i64, after: i64) -> Clock {
        let midpoint = before.saturating_add(after.saturating_sub(before).max(0) / 2);
        Clock {
            offset_ms: server.saturating_sub(midpoint),
        }
    }

    pub fn now(&self) -> DateTime {
        DateTime::from_millis(
            DateTime::now()
                .timestamp_millis()
                .saturating_add(self.offset_ms),
        )
    }

    fn expiry(&self) -> DateTime {
        let lease = i64::try_from(LEASE.as_millis()).unwrap_or(i64::MAX);
        DateTime::from_millis(self.now().timestamp_millis().saturating_add(lease))
    }
}

fn failed(action: &str, db: &str, e: &mongodb::error::Error) -> Error {
    Error::failed(format!(
        "{action} in {db}.{COLLECTION}: {}",
        mongo::describe(e)
    ))
}

/// A random hex string of `n` bytes.
fn random_hex(n: usize) -> Result<String, Error> {
    let mut bytes = vec![0u8; n];
    getrandom::fill(&mut bytes)
        .map_err(|e| Error::failed(format!("internal: no random source: {e}")))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// A lease this process holds and renews in the background until [`Lease::end`] (or drop,
/// which only stops the renewal: the document then expires). Its document carries a random
/// token: renewed and deleted only while it still holds that token and has not expired, so a
/// lease that lapsed and was taken over is never extended or deleted by its old holder.
#[derive(Debug)]
pub struct Lease {
    coll: Collection<Document>,
    id: String,
    token: String,
    clock: Clock,
    lost: Arc<AtomicBool>,
    renewal: tokio::task::JoinHandle<()>,
}

/// A lease document in the leases collection, as the signal handler deletes it.
type HeldLease = (Collection<Document>, String, String);

/// The leases this process holds, for the signal handler ([`release_all`]).
static HELD: std::sync::Mutex<Vec<HeldLease>> = std::sync::Mutex::new(Vec::new());

fn held() -> std::sync::MutexGuard<'static, Vec<HeldLease>> {
    HELD.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Called by the signal handler before the process exits: delete the leases this process
/// holds, so a dump (or writer) waiting for them goes on at once; bounded at 5 s (a server that
/// does not answer leaves them to expire).
pub async fn release_all() {
    let leases = std::mem::take(&mut *held());
    for (coll, id, token) in leases {
        let _ = tokio::time::timeout(
            Duration::from_secs(5),
            coll.delete_one(doc! { "_id": &id, "token": &token }),
        )
        .await;
    }
}

/// Extend the lease `id` held with `token`; `false` when it is no longer this holder's (it
/// expired, or another took it over).
async fn renew(coll: &Collection<Document>, id: &str, token: &str, clock: Clock) -> bool {
    let renewed = coll
        .update_one(
            doc! { "_id": id, "token": token, "expires": { "$gt": clock.now() } },
            doc! { "$set": { "expires": clock.expiry() } },
        )
        .await;
    match renewed {
        Ok(r) => r.matched_count == 1,
        Err(e) => {
            // Not lost yet: the next renewal may get through before it expires.
            tracing::warn!(lease = %id, error = %mongo::describe(&e), "could not renew a lease");
            true
        }
    }
}

impl Lease {
    fn hold(coll: Collection<Document>, id: String, token: String, clock: Clock) -> Lease {
        held().push((coll.clone(), id.clone(), token.clone()));
        let lost = Arc::new(AtomicBool::new(false));
        let (c, i, t, l) = (coll.clone(), id.clone(), token.clone(), lost.clone());
        let renewal = tokio::spawn(async move {
            loop {
                tokio::time::sleep(LEASE / 3).await;
                if !renew(&c, &i, &t, clock).await {
                    l.store(true, Ordering::SeqCst);
                    tracing::error!(
                        lease = %i,
                        "a lease lapsed before it was renewed (this process was paused, or the \
                         server unreachable, for over {} s); it no longer holds",
                        LEASE.as_secs()
                    );
                    return;
                }
            }
        });
        Lease {
            coll,
            id,
            token,
            clock,
            lost,
            renewal,
        }
    }

    /// Renew now; `false` (and [`Lease::lost`] from then on) when the lease is no longer this
    /// holder's.
    pub async fn renew(&self) -> bool {
        let ok = renew(&self.coll, &self.id, &self.token, self.clock).await;
        if !ok {
            self.lost.store(true, Ordering::SeqCst);
        }
        ok
    }

    /// Whether the lease lapsed while held: what it protected may have been done meanwhile.
    pub fn lost(&self) -> bool {
        self.lost.load(Ordering::SeqCst)
    }

    fn forget(&self) {
        held().retain(|(_, id, token)| !(id == &self.id && token == &self.token));
    }

    /// Stop renewing and delete the document (only if it is still this holder's).
    pub async fn end(self) {
        self.renewal.abort();
        self.forget();
        let mine = doc! { "_id": &self.id, "token": &self.token };
        if let Err(e) = self.coll.delete_one(mine).await {
            tracing::warn!(lease = %self.id, error = %mongo::describe(&e), "could not delete a lease; it expires by itself");
        }
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.renewal.abort();
        self.forget();
    }
}

/// The live dump lease, if any: who holds it.
async fn live_dump(
    coll: &Collection<Document>,
    db: &str,
    clock: Clock,
) -> Result<Option<String>, Error> {
    let found = coll
        .find_one(doc! { "_id": "dump", "expires": { "$gt": clock.now() } })
        .await
        .map_err(|e| failed("reading the dump lease", db, &e))?;
    Ok(found.map(|d| d.get_str("runner").unwrap_or("another process").to_string()))
}

/// Register as a writer of `db`, waiting up to `wait` for a dump in progress to end. Exit 75
/// (`Error::Busy`) when it has not ended by then.
pub async fn begin_writes(db: &Database, wait: Duration) -> Result<Lease, Error> {
    let coll = db.collection::<Document>(COLLECTION);
    let me = this_process();
    let id = format!("writer:{me}:{}", random_hex(6)?);
    let token = random_hex(16)?;
    let clock = Clock::of(db).await;
    let started = Instant::now();
    let mut said = false;
    loop {
        coll.insert_one(doc! {
            "_id": &id, "kind": "writer", "runner": &me, "token": &token,
            "started": clock.now(), "expires": clock.expiry(),
        })
        .await
        .map_err(|e| failed("registering as a writer", db.name(), &e))?;
        let Some(holder) = live_dump(&coll, db.name(), clock).await? else {
            return Ok(Lease::hold(coll, id, token, clock));
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
    let token = random_hex(16)?;
    let clock = Clock::of(db).await;
    let lease = doc! {
        "_id": "dump", "kind": "dump", "runner": &me, "token": &token,
        "started": clock.now(), "expires": clock.expiry(),
    };
    if let Err(e) = coll.insert_one(lease.clone()).await {
        if !mongo::is_duplicate_key(&e) {
            return Err(failed("taking the dump lease", db.name(), &e));
        }
        if let Some(holder) = live_dump(&coll, db.name(), clock).await? {
            return Err(Error::failed(format!(
                "another backup dump of {} by {holder} is in progress; run again once it has ended",
                db.name()
            )));
        }
        // Its holder died: take over the expired lease.
        coll.delete_one(doc! { "_id": "dump", "expires": { "$lte": clock.now() } })
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
    let lease = Lease::hold(coll.clone(), "dump".into(), token, clock);
    let started = Instant::now();
    let mut said = false;
    loop {
        let writers = coll
            .count_documents(doc! { "kind": "writer", "expires": { "$gt": clock.now() } })
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_server_clock_is_read_halfway_through_the_round_trip() {
        // A server 5 s ahead, read during a 200 ms round trip.
        assert_eq!(Clock::from_reading(1_000, 6_100, 1_200).offset_ms, 5_000);
        // One behind, and a clock that went backwards meanwhile (no overflow, no panic).
        assert_eq!(Clock::from_reading(10_000, 7_000, 10_000).offset_ms, -3_000);
        assert_eq!(Clock::from_reading(10_000, 10_000, 9_000).offset_ms, 0);
        let c = Clock { offset_ms: 60_000 };
        let ahead = c.now().timestamp_millis() - DateTime::now().timestamp_millis();
        assert!((59_000..=61_000).contains(&ahead), "{ahead}");
        let lease = c.expiry().timestamp_millis() - c.now().timestamp_millis();
        assert!((89_000..=90_000).contains(&lease), "{lease}");
    }
}
