//! Store adapters.

pub mod memory;

pub use memory::MemoryStore;
