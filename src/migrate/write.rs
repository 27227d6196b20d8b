//! Writing cleaned documents: unordered `insert_many` batches, duplicate keys counted as
//! duplicates, and the query indexes created after the load.

use std::sync::atomic::{AtomicU64, Ordering};

use bson::{doc, Document, RawDocumentBuf};
use mongodb::error::ErrorKind;
use mongodb::options::IndexOptions;
use mongodb::{Collection, Database, IndexModel};

use super::clean::Cleaned;
use crate::error::Error;

/// MongoDB's duplicate-key error code.
const DUPLICATE_KEY: i32 = 11000;

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
}

impl Writer {
    pub fn new(db: &Database, collection: &str) -> Writer {
        Writer {
            db: db.clone(),
            coll: db.collection(collection),
            inserted: AtomicU64::new(0),
            duplicates: AtomicU64::new(0),
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
        let dups = errors.len() as u64;
        self.duplicates.fetch_add(dups, Ordering::Relaxed);
        self.inserted.fetch_add(total - dups, Ordering::Relaxed);
        Ok(())
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
    let existing: Vec<String> = match coll.list_index_names().await {
        Ok(names) => names,
        Err(e) if matches!(&*e.kind, mongodb::error::ErrorKind::Command(c) if c.code == 26) => {
            Vec::new()
        }
        Err(e) => {
            return Err(Error::failed(format!(
                "listing indexes of {}: {}",
                coll.name(),
                crate::mongo::describe(&e)
            )))
        }
    };
    models.retain(|m| {
        m.options
            .as_ref()
            .and_then(|o| o.name.as_ref())
            .is_none_or(|n| !existing.contains(n))
    });
    if models.is_empty() {
        return Ok(());
    }
    coll.create_indexes(models).await.map_err(|e| {
        Error::failed(format!(
            "creating indexes on {}: {}",
            coll.name(),
            crate::mongo::describe(&e)
        ))
    })?;
    Ok(())
}

/// "Medical Condition" → "medical_condition".
pub fn index_name(field: &str) -> String {
    field.to_ascii_lowercase().replace(' ', "_")
}
