//! Discovery (being written).
pub mod trace;
