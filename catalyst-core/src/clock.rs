//! Time as a port, so schedulers and back-off are testable without sleeping.

use crate::model::Timestamp;

/// A source of the current instant.
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// Now, in UTC.
    fn now(&self) -> Timestamp;
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        // Microseconds: what PostgreSQL keeps, so values round-trip through every store.
        chrono::SubsecRound::trunc_subsecs(chrono::Utc::now(), 6)
    }
}
