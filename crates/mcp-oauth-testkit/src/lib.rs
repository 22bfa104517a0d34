//! What the mcp-oauth test suites share, in one place instead of a copy per test file.
//!
//! - [`mock_server`]: one mock HTTP server (a closure or a route table answers) that
//!   records every request, can be stopped and restarted on the same port, and serves
//!   async and plain tests alike.
//! - [`fault_server`]: a raw TCP server for what a well-behaved HTTP library cannot do
//!   (connections closed or hung, bodies cut short or endless, one byte at a time), and
//!   ports that are closed or never answer.
//! - [`browser`]: [`FollowingBrowser`](browser::FollowingBrowser), the user who clicks
//!   "allow" in the engine's authorization code flow.
//! - [`cli`]: what the tests of the `mcp-oauth` binary share: the real servers
//!   `scripts/bootstrap` installs and how to start them, a sandbox per test, waiting for
//!   a child with a limit, reading the servers' and the browser's logs.
//! - [`store_contract`]: the checks every `CredentialStore` must pass, with their
//!   fixtures; a store crate runs them from its tests.
//!
//! Not published: a dev-dependency of the workspace's crates only.

pub mod browser;
pub mod cli;
pub mod fault_server;
pub mod mock_server;
pub mod store_contract;
