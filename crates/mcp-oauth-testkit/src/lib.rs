//! What the mcp-oauth test suites share, in one place instead of a copy per test file.
//!
//! - [`store_contract`]: the checks every `CredentialStore` must pass, with their
//!   fixtures; a store crate runs them from its tests.
//!
//! Not published: a dev-dependency of the workspace's crates only.

pub mod store_contract;
