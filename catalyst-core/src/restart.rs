//! The restart policy: a pure function of the crash history and the current instant.

use std::time::Duration;

use crate::model::Timestamp;

/// When to restart a server that exited unasked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RestartMode {
    /// Never restart.
    Never,
    /// Restart after a crash (non-zero exit, signal or OOM), not after a clean exit.
    OnFailure,
    /// Restart after any unasked exit.
    Always,
}

/// A server's restart policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RestartPolicy {
    /// When to restart.
    pub mode: RestartMode,
    /// At most this many restarts within `window_secs`; then stay crashed.
    pub max_restarts: u32,
    /// The window for `max_restarts`, in seconds.
    pub window_secs: u64,
    /// Delay before the first restart; doubles with each crash in the window.
    pub backoff_initial_ms: u64,
    /// Upper bound of the delay.
    pub backoff_max_ms: u64,
    /// Restart after an OOM kill? Restarting into the same limit usually loops.
    pub restart_on_oom: bool,
}

impl Default for RestartPolicy {
    fn default() -> Self {
        Self {
            mode: RestartMode::OnFailure,
            max_restarts: 3,
            window_secs: 600,
            backoff_initial_ms: 1_000,
            backoff_max_ms: 60_000,
            restart_on_oom: false,
        }
    }
}

/// How the process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExitInfo {
    /// Exit code 0 and no OOM.
    pub clean: bool,
    /// Killed by the OOM killer.
    pub oom: bool,
}

/// What to do after an unasked exit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RestartDecision {
    /// Start again after `delay`; this is restart number `attempt` in the window.
    Restart {
        /// Back-off delay.
        delay: Duration,
        /// 1-based attempt within the window.
        attempt: u32,
    },
    /// Stay down; the reason is shown to the user.
    GiveUp {
        /// Why the policy gave up, e.g. `exited 4 times within 300 s`.
        reason: String,
    },
    /// The policy does not restart this kind of exit.
    Stay,
}

impl RestartPolicy {
    /// Decide what follows an exit. `crashes` are the times of earlier restarts-worthy exits
    /// (this one excluded), in any order; `now` comes from the [`crate::clock::Clock`].
    pub fn decide(&self, exit: ExitInfo, crashes: &[Timestamp], now: Timestamp) -> RestartDecision {
        let wanted = match self.mode {
            RestartMode::Never => false,
            RestartMode::OnFailure => !exit.clean,
            RestartMode::Always => true,
        };
        if !wanted {
            return RestartDecision::Stay;
        }
        if exit.oom && !self.restart_on_oom {
            return RestartDecision::GiveUp { reason: "killed for running out of memory".into() };
        }
        let window = chrono::Duration::seconds(i64::try_from(self.window_secs).unwrap_or(i64::MAX / 1000));
        let recent = crashes.iter().filter(|t| now.signed_duration_since(**t) < window).count();
        let recent = u32::try_from(recent).unwrap_or(u32::MAX);
        if recent >= self.max_restarts {
            return RestartDecision::GiveUp {
                reason: format!("exited {} times within {} s", recent.saturating_add(1), self.window_secs),
            };
        }
        RestartDecision::Restart { delay: self.backoff(recent), attempt: recent + 1 }
    }

    /// The delay before restart number `previous + 1`: initial × 2^previous, capped.
    pub fn backoff(&self, previous: u32) -> Duration {
        let factor = 1u64.checked_shl(previous.min(63)).unwrap_or(u64::MAX);
        Duration::from_millis(self.backoff_initial_ms.saturating_mul(factor).min(self.backoff_max_ms))
    }

    /// Keep only the crash times that still count, so the history never grows unbounded.
    pub fn prune(&self, crashes: &mut Vec<Timestamp>, now: Timestamp) {
        let window = chrono::Duration::seconds(i64::try_from(self.window_secs).unwrap_or(i64::MAX / 1000));
        crashes.retain(|t| now.signed_duration_since(*t) < window);
        let keep = usize::try_from(self.max_restarts).unwrap_or(usize::MAX).saturating_add(1);
        if crashes.len() > keep {
            crashes.drain(..crashes.len() - keep);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> Timestamp {
        chrono::DateTime::from_timestamp(1_700_000_000 + secs, 0).unwrap_or_default()
    }

    const CRASH: ExitInfo = ExitInfo { clean: false, oom: false };
    const CLEAN: ExitInfo = ExitInfo { clean: true, oom: false };
    const OOM: ExitInfo = ExitInfo { clean: false, oom: true };

    #[test]
    fn modes() {
        let mut p = RestartPolicy::default();
        assert!(matches!(p.decide(CRASH, &[], at(0)), RestartDecision::Restart { attempt: 1, .. }));
        assert_eq!(p.decide(CLEAN, &[], at(0)), RestartDecision::Stay);
        p.mode = RestartMode::Always;
        assert!(matches!(p.decide(CLEAN, &[], at(0)), RestartDecision::Restart { .. }));
        p.mode = RestartMode::Never;
        assert_eq!(p.decide(CRASH, &[], at(0)), RestartDecision::Stay);
    }

    #[test]
    fn backoff_doubles_and_caps() {
        let p =
            RestartPolicy { backoff_initial_ms: 1000, backoff_max_ms: 5000, max_restarts: 10, ..Default::default() };
        let delays: Vec<u64> = (0..5).map(|n| p.backoff(n).as_millis() as u64).collect();
        assert_eq!(delays, vec![1000, 2000, 4000, 5000, 5000]);
        assert_eq!(p.backoff(200), Duration::from_millis(5000));
    }

    #[test]
    fn gives_up_after_max_in_window_and_forgets_old_crashes() {
        let p = RestartPolicy { max_restarts: 2, window_secs: 60, ..Default::default() };
        let history = [at(0), at(10)];
        assert!(matches!(p.decide(CRASH, &history, at(20)), RestartDecision::GiveUp { .. }));
        // Both earlier crashes are outside the window 100 s later.
        assert!(matches!(p.decide(CRASH, &history, at(100)), RestartDecision::Restart { attempt: 1, .. }));
        // One inside, one outside.
        assert_eq!(
            p.decide(CRASH, &history, at(65)),
            RestartDecision::Restart { delay: Duration::from_millis(2000), attempt: 2 }
        );
    }

    #[test]
    fn oom_aware() {
        let mut p = RestartPolicy::default();
        assert!(matches!(p.decide(OOM, &[], at(0)), RestartDecision::GiveUp { .. }));
        p.restart_on_oom = true;
        assert!(matches!(p.decide(OOM, &[], at(0)), RestartDecision::Restart { .. }));
    }

    #[test]
    fn prune_bounds_history() {
        let p = RestartPolicy { max_restarts: 2, window_secs: 1000, ..Default::default() };
        let mut h = vec![at(0), at(1), at(2), at(3), at(4)];
        p.prune(&mut h, at(5));
        assert_eq!(h, vec![at(2), at(3), at(4)]);
        p.prune(&mut h, at(2000));
        assert!(h.is_empty());
    }
}
