//! Fakes and conformance suites (feature `testing`, for tests only). Unit tests use the fakes;
//! every store adapter, [`crate::store::MemoryStore`] included, runs the same conformance suites.

mod clock;
pub mod conformance;
mod fake_runtime;

pub use clock::ManualClock;
pub use fake_runtime::{FakeRuntime, FakeRuntimeCall};
