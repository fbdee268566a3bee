//! Database plumbing shared by the services: one pool over SQLite or PostgreSQL, write
//! transactions, per-service migrations, and the per-service infrastructure tables
//! (transactional outbox, inbox, audit trail, idempotency keys).
//!
//! Raw sqlx errors never leave this crate's callers' storage modules: translate them with
//! [`StorageError`].

pub mod blob;
pub mod db;
pub mod error;
pub mod fair;
pub mod infra;
pub mod migrate;
pub mod runs;
pub mod sealed;
pub mod transition;

pub use blob::Blobs;
pub use db::{Conn, Db, DbConfig, Engine, Tx};
pub use error::StorageError;
pub use infra::{AuditEntry, Backlog, Infra, NewEvent, OutboxRow};
pub use migrate::Migration;

pub use sqlx;
