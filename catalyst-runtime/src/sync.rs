//! Locking `std::sync` mutexes.

use std::sync::{Mutex, MutexGuard, PoisonError};

/// Lock `m`, even when a thread panicked while holding it. Every mutex of this crate guards
/// data that stays consistent between two statements (maps, lists, counters), so a panic
/// elsewhere must not make it unusable for everyone else.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}
