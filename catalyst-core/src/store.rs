//! Store adapters that need no I/O. [`MemoryStore`] keeps every store port behind one lock:
//! the embedded choice for tests, examples and throwaway control planes. The SQL adapters live
//! in `catalyst-runtime`; all of them pass the conformance suites of `testing`.

mod memory;

pub use memory::MemoryStore;
