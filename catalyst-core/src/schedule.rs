//! Cron schedules (croner: seconds optional, `L`, `W`, `#`, DST-correct) in a time zone.

use std::str::FromStr;

use chrono::TimeZone;

use crate::model::Timestamp;
use crate::{Error, Result};

/// A parsed cron expression bound to an IANA time zone.
#[derive(Debug, Clone)]
pub struct Schedule {
    cron: croner::Cron,
    tz: chrono_tz::Tz,
}

impl Schedule {
    /// Parse `expr` read in time zone `tz` (e.g. `Europe/Berlin`, `UTC`).
    pub fn parse(expr: &str, tz: &str) -> Result<Self> {
        if expr.len() > 256 {
            return Err(Error::invalid("cron expression is too long"));
        }
        let cron =
            croner::Cron::from_str(expr).map_err(|e| Error::invalid(format!("cron expression {expr:?}: {e}")))?;
        let tz = chrono_tz::Tz::from_str(tz).map_err(|_| Error::invalid(format!("unknown time zone {tz:?}")))?;
        Ok(Self { cron, tz })
    }

    /// The first firing strictly after `after`, or `None` if the expression never fires again.
    pub fn next_after(&self, after: Timestamp) -> Option<Timestamp> {
        let local = self.tz.from_utc_datetime(&after.naive_utc());
        self.cron.find_next_occurrence(&local, false).ok().map(|t| t.with_timezone(&chrono::Utc))
    }

    /// Firings in `(from, to]`, at most `limit` of them (for catch-up decisions).
    pub fn between(&self, from: Timestamp, to: Timestamp, limit: usize) -> Vec<Timestamp> {
        let mut out = Vec::new();
        let mut cursor = from;
        while out.len() < limit {
            match self.next_after(cursor) {
                Some(t) if t <= to => {
                    out.push(t);
                    cursor = t;
                }
                _ => break,
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> Timestamp {
        chrono::DateTime::parse_from_rfc3339(s).map(|d| d.with_timezone(&chrono::Utc)).unwrap_or_default()
    }

    #[test]
    fn next_in_time_zone() {
        let s = Schedule::parse("0 4 * * *", "Europe/Berlin").expect("valid");
        // 04:00 Berlin in winter is 03:00 UTC.
        assert_eq!(s.next_after(utc("2026-01-10T12:00:00Z")), Some(utc("2026-01-11T03:00:00Z")));
        // In summer it is 02:00 UTC.
        assert_eq!(s.next_after(utc("2026-07-10T12:00:00Z")), Some(utc("2026-07-11T02:00:00Z")));
    }

    #[test]
    fn last_day_and_nth_weekday() {
        let last = Schedule::parse("0 0 L * *", "UTC").expect("valid");
        assert_eq!(last.next_after(utc("2026-02-01T00:00:00Z")), Some(utc("2026-02-28T00:00:00Z")));
        let second_monday = Schedule::parse("0 0 * * MON#2", "UTC").expect("valid");
        assert_eq!(second_monday.next_after(utc("2026-03-01T00:00:00Z")), Some(utc("2026-03-09T00:00:00Z")));
    }

    #[test]
    fn bad_input_is_invalid_input() {
        assert!(Schedule::parse("61 * * * *", "UTC").is_err());
        assert!(Schedule::parse("* * * * *", "Mars/Olympus").is_err());
        let e = Schedule::parse("nonsense", "UTC").expect_err("bad");
        assert_eq!(e.kind(), crate::ErrorKind::InvalidInput);
    }

    #[test]
    fn between_lists_missed_firings() {
        let s = Schedule::parse("0 * * * *", "UTC").expect("valid");
        let got = s.between(utc("2026-01-01T00:30:00Z"), utc("2026-01-01T03:00:00Z"), 10);
        assert_eq!(got.len(), 3);
        assert_eq!(s.between(utc("2026-01-01T00:30:00Z"), utc("2026-01-01T03:00:00Z"), 2).len(), 2);
    }
}
