//! File store (being written).
#[derive(Debug)]
pub struct FileStore;
