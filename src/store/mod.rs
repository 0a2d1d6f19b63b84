//! Persistence backends of the store contract ([`crate::domain::store`]). This is the only
//! module with SQL: a backend stores and loads domain values and decides nothing.
//!
//! [`sqlite::SqliteStore`] is the embedded default. `contract` (tests) checks the contract's
//! guarantees against any backend.

#[cfg(test)]
pub(crate) mod contract;
pub mod sqlite;
