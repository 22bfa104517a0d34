//! Memory store (being written).
#[derive(Debug, Default)]
pub struct MemoryStore;
