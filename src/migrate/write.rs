//! Writing cleaned documents: unordered `insert_many` batches, duplicate keys in the `_id` index
//! counted as duplicates (a conflict in any other unique index is an error naming it), and the
//! query indexes created after the load.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};

use bson::{doc, Document, RawDocumentBuf};
use futures_util::TryStreamExt;
use mongodb::error::{ErrorKind, IndexedWriteError};
use mongodb::options::IndexOptions;
use mongodb::{Collection, Database, IndexModel};
use tokio::sync::OnceCell;

use super::clean::Cleaned;
use crate::error::Error;
use crate::mongo::{self, DUPLICATE_KEY, ID_INDEX};

/// The fields the common queries filter on; each gets an ascending index.
pub const INDEXED_FIELDS: [&str; 5] = [
    "Name",
    "Medical Condition",
    "Date of Admission",
    "Hospital",
    "Doctor",
];

pub struct Writer {
    db: Database,
    coll: Collection<RawDocumentBuf>,
    pub inserted: AtomicU64,
    pub duplicates: AtomicU64,
    /// The collection's unique indexes besides `_id_`, looked up at the first duplicate key
    /// whose index the server does not name.
    unique_indexes: OnceCell<Vec<String>>,
}

impl Writer {
    pub fn new(db: &Database, collection: &str) -> Writer {
        Writer {
            db: db.clone(),
            coll: db.collection(collection),
            inserted: AtomicU64::new(0),
            duplicates: AtomicU64::new(0),
            unique_indexes: OnceCell::new(),
        }
    }

    /// Insert one batch. Rows whose `_id` (their content) is already stored are duplicates.
    pub async fn write(&self, batch: Vec<Cleaned>) -> Result<(), Error> {
        if batch.is_empty() {
            return Ok(());
        }
        let total = batch.len() as u64;
        let first_line = batch.first().map_or(0, |c| c.line);
        let docs: Vec<&RawDocumentBuf> = batch.iter().map(|c| &c.doc).collect();
        let result = self.coll.insert_many(docs).ordered(false).await;
        let err = match result {
            Ok(_) => {
                self.inserted.fetch_add(total, Ordering::Relaxed);
                return Ok(());
            }
            Err(e) => e,
        };
        let ErrorKind::InsertMany(failure) = err.kind.as_ref() else {
            return Err(Error::failed(format!(
                "inserting the batch starting at line {first_line} into {}.{}: {}",
                self.db.name(),
                self.coll.name(),
                crate::mongo::describe(&err)
            )));
        };
        if let Some(wce) = &failure.write_concern_error {
            return Err(Error::failed(format!(
                "write concern failed for the batch starting at line {first_line}: code {} {}",
                wce.code, wce.code_name
            )));
        }
        let errors = failure.write_errors.as_deref().unwrap_or(&[]);
        // Server messages for other errors may quote field values: name the line and the code.
        if let Some(other) = errors.iter().find(|w| w.code != DUPLICATE_KEY) {
            let line = batch.get(other.index).map_or(0, |c| c.line);
            return Err(Error::failed(format!(
                "the server refused the row at line {line} (code {} {}); nothing about it was \
                 stored; fix the cause and run again",
                other.code,
                other.code_name.as_deref().unwrap_or("")
            )));
        }
        self.check_copies_of_stored_rows(&batch, errors).await?;
        let dups = errors.len() as u64;
        self.duplicates.fetch_add(dups, Ordering::Relaxed);
        self.inserted.fetch_add(total - dups, Ordering::Relaxed);
        Ok(())
    }

    /// A duplicate key is a duplicate only in the `_id` index: the row's content is stored. A
    /// conflict in any other unique index is a distinct admission the server refused: an error
    /// naming the index, never a silent "duplicate".
    async fn check_copies_of_stored_rows(
        &self,
        batch: &[Cleaned],
        errors: &[IndexedWriteError],
    ) -> Result<(), Error> {
        let line = |w: &IndexedWriteError| batch.get(w.index).map_or(0, |c| c.line);
        let mut unnamed = Vec::new();
        for w in errors {
            match mongo::duplicate_key_index(&w.message) {
                Some(ID_INDEX) => {}
                Some(index) => return Err(self.not_a_copy(line(w), &[index.to_string()])),
                None => unnamed.push(w),
            }
        }
        if unnamed.is_empty() {
            return Ok(());
        }
        // The server did not name the index (FerretDB). With `_id` the only unique one, it is
        // the one; otherwise a row is a copy only when its `_id` is stored.
        let others = self
            .unique_indexes
            .get_or_try_init(|| mongo::unique_indexes(&self.coll))
            .await?;
        if others.is_empty() {
            return Ok(());
        }
        let ids: Vec<&str> = unnamed
            .iter()
            .filter_map(|w| batch.get(w.index))
            .map(|c| c.id.as_str())
            .collect();
        let stored = self.stored_ids(&ids).await?;
        match unnamed.iter().find(|w| {
            batch
                .get(w.index)
                .is_none_or(|c| !stored.contains(c.id.as_str()))
        }) {
            Some(w) => Err(self.not_a_copy(line(w), others)),
            None => Ok(()),
        }
    }

    /// Which of `ids` the collection holds.
    async fn stored_ids(&self, ids: &[&str]) -> Result<HashSet<String>, Error> {
        let failed = |e: mongodb::error::Error| {
            Error::failed(format!(
                "looking up the duplicate keys in {}.{}: {}",
                self.db.name(),
                self.coll.name(),
                mongo::describe(&e)
            ))
        };
        let docs: Vec<RawDocumentBuf> = self
            .coll
            .find(doc! { "_id": { "$in": ids } })
            .projection(doc! { "_id": 1 })
            .await
            .map_err(failed)?
            .try_collect()
            .await
            .map_err(failed)?;
        Ok(docs
            .iter()
            .filter_map(|d| d.get_str("_id").ok().map(str::to_string))
            .collect())
    }

    fn not_a_copy(&self, line: u64, indexes: &[String]) -> Error {
        Error::failed(format!(
            "the row at line {line} conflicts with a stored document in {} of {}.{} (code \
             {DUPLICATE_KEY} DuplicateKey): it is not a copy of a stored row, so it was not \
             stored and not counted as a duplicate; drop or change that index (or fix the data) \
             and run again",
            mongo::unique_index_phrase(indexes),
            self.db.name(),
            self.coll.name()
        ))
    }

    /// Create the query indexes (idempotent: existing indexes are left as they are).
    pub async fn ensure_indexes(&self) -> Result<(), Error> {
        ensure_indexes(&self.db.collection::<Document>(self.coll.name())).await
    }
}

pub async fn ensure_indexes(coll: &Collection<Document>) -> Result<(), Error> {
    // Built after the load, not before: one pass per index is cheaper than maintaining them
    // through every insert. No lineage index: tracing a document back is a rare audit query.
    let mut models: Vec<IndexModel> = INDEXED_FIELDS
        .iter()
        .map(|f| {
            IndexModel::builder()
                .keys(doc! { *f: 1 })
                .options(IndexOptions::builder().name(index_name(f)).build())
                .build()
        })
        .collect();
    // Create only the missing ones: re-creating an existing index is a no-op on MongoDB but
    // crashes FerretDB 1.x's connection handler.
    // A collection nothing was inserted into (every row rejected, or every row a duplicate of
    // nothing yet) does not exist: the server answers NamespaceNotFound (26), meaning no index.
    // Two runners finishing at once (ingest, sharded tasks) both find an index missing and both
    // create it: on MongoDB the second creation is a no-op, on FerretDB it drops the connection.
    // So look again after a failure: what the other runner made is not a failure, and what is
    // still missing is created again (three tries in all).
    let mut last = None;
    for _ in 0..3 {
        let existing = existing_indexes(coll).await?;
        models.retain(|m| missing(m, &existing));
        if models.is_empty() {
            return Ok(());
        }
        match coll.create_indexes(models.clone()).await {
            Ok(_) => return Ok(()),
            Err(e) => last = Some(e),
        }
    }
    Err(Error::failed(format!(
        "creating indexes on {}: {}",
        coll.name(),
        last.map_or_else(String::new, |e| crate::mongo::describe(&e))
    )))
}

fn missing(model: &IndexModel, existing: &[String]) -> bool {
    model
        .options
        .as_ref()
        .and_then(|o| o.name.as_ref())
        .is_none_or(|n| !existing.contains(n))
}

async fn existing_indexes(coll: &Collection<Document>) -> Result<Vec<String>, Error> {
    match coll.list_index_names().await {
        Ok(names) => Ok(names),
        Err(e) if matches!(&*e.kind, mongodb::error::ErrorKind::Command(c) if c.code == 26) => {
            Ok(Vec::new())
        }
        Err(e) => Err(Error::failed(format!(
            "listing indexes of {}: {}",
            coll.name(),
            crate::mongo::describe(&e)
        ))),
    }
}

/// "Medical Condition" → "medical_condition".
pub fn index_name(field: &str) -> String {
    field.to_ascii_lowercase().replace(' ', "_")
}
