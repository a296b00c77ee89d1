//! Fakes and conformance suites (feature `testing`). Unit tests use the fakes; every real
//! adapter runs the same conformance suite as its fake.

mod clock;
pub mod conformance;
mod fake_runtime;
mod memory_store;

pub use clock::ManualClock;
pub use fake_runtime::{FakeRuntime, FakeRuntimeCall};
pub use memory_store::MemoryStore;
