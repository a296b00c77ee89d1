//! A server's console: sequence numbers, a ring buffer of recent lines, a throttle against
//! floods, and live readers. Readers pull batches straight from the ring by sequence number
//! (woken by a watch channel), so fan-out costs one lock per batch per reader rather than a
//! queued copy per line per reader. Memory is bounded everywhere: the ring holds `history`
//! lines, each at most `max_line_bytes`; a reader that falls further behind than the ring is
//! told how many lines it missed instead of growing a queue.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use catalyst_core::model::{LogStream, Timestamp};
use tokio::sync::watch;

use crate::sync::lock;

/// Console limits.
#[derive(Debug, Clone, Copy)]
pub struct ConsoleConfig {
    /// Lines kept for readers that resume from a sequence number.
    pub history: usize,
    /// Lines accepted per window; the excess is dropped with one notice per window.
    pub max_lines_per_window: u32,
    /// Throttle window.
    pub window: Duration,
    /// Longer lines are cut (on a character boundary) and marked.
    pub max_line_bytes: usize,
}

impl Default for ConsoleConfig {
    /// Wings' numbers: 2000 lines per 100 ms, 64 KiB lines; 1000 lines of history.
    fn default() -> Self {
        Self {
            history: 1000,
            max_lines_per_window: 2000,
            window: Duration::from_millis(100),
            max_line_bytes: 64 * 1024,
        }
    }
}

/// One console line with its sequence number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsoleEntry {
    /// Strictly increasing per server.
    pub seq: i64,
    /// Source.
    pub stream: LogStream,
    /// Text (shared: every live reader gets the same allocation).
    pub line: Arc<str>,
    /// When it was seen.
    pub at: Timestamp,
}

/// One server's console.
#[derive(Debug)]
pub struct Console {
    config: ConsoleConfig,
    state: Mutex<State>,
    /// The sequence number the next line will get; readers wait on it.
    latest: watch::Sender<i64>,
}

#[derive(Debug)]
struct State {
    ring: VecDeque<ConsoleEntry>,
    next_seq: i64,
    window_start: Instant,
    in_window: u32,
    dropped_total: u64,
    noticed: bool,
}

/// What happened to a pushed line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pushed {
    /// Stored and sent; these entries (a throttle notice may precede the line) must be forwarded.
    Accepted(Vec<ConsoleEntry>),
    /// Dropped by the throttle; a notice, if this is the window's first drop.
    Throttled(Option<ConsoleEntry>),
}

impl Console {
    /// An empty console whose first line gets `first_seq`.
    pub fn new(config: ConsoleConfig, first_seq: i64) -> Self {
        Self {
            config,
            state: Mutex::new(State {
                ring: VecDeque::with_capacity(config.history.min(4096)),
                next_seq: first_seq,
                window_start: Instant::now(),
                in_window: 0,
                dropped_total: 0,
                noticed: false,
            }),
            latest: watch::channel(first_seq).0,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        lock(&self.state)
    }

    fn record(&self, s: &mut State, stream: LogStream, line: String, at: Timestamp) -> ConsoleEntry {
        let entry = ConsoleEntry { seq: s.next_seq, stream, line: line.into(), at };
        s.next_seq += 1;
        if s.ring.len() >= self.config.history {
            s.ring.pop_front();
        }
        s.ring.push_back(entry.clone());
        self.latest.send_replace(s.next_seq);
        entry
    }

    fn cut(&self, mut line: String) -> String {
        if line.len() > self.config.max_line_bytes {
            let mut end = self.config.max_line_bytes;
            while !line.is_char_boundary(end) {
                end -= 1;
            }
            line.truncate(end);
            line.push_str(" [line cut]");
        }
        line
    }

    /// Offer an output line, subject to the throttle.
    pub fn push(&self, stream: LogStream, line: String, now: Instant, at: Timestamp) -> Pushed {
        let line = self.cut(line);
        let mut s = self.lock();
        if now.duration_since(s.window_start) >= self.config.window {
            s.window_start = now;
            s.in_window = 0;
            s.noticed = false;
        }
        if s.in_window >= self.config.max_lines_per_window {
            s.dropped_total += 1;
            if s.noticed {
                return Pushed::Throttled(None);
            }
            s.noticed = true;
            let notice = format!(
                "console output throttled: more than {} lines in {} ms; dropping lines",
                self.config.max_lines_per_window,
                self.config.window.as_millis()
            );
            return Pushed::Throttled(Some(self.record(&mut s, LogStream::System, notice, at)));
        }
        s.in_window += 1;
        Pushed::Accepted(vec![self.record(&mut s, stream, line, at)])
    }

    /// A line of Catalyst's own (never throttled).
    pub fn system(&self, line: String, at: Timestamp) -> ConsoleEntry {
        let line = self.cut(line);
        let mut s = self.lock();
        self.record(&mut s, LogStream::System, line, at)
    }

    /// Lines after `after` still in the ring (all of them for `None`), oldest first.
    pub fn since(&self, after: Option<i64>) -> Vec<ConsoleEntry> {
        let s = self.lock();
        s.ring.iter().filter(|e| after.is_none_or(|a| e.seq > a)).cloned().collect()
    }

    /// A reader of the lines after `after` (`None`: from the next line on).
    pub fn reader(self: &Arc<Self>, after: Option<i64>) -> ConsoleReader {
        let next = after.map_or_else(|| self.next_seq(), |a| a + 1);
        ConsoleReader { console: self.clone(), rx: self.latest.subscribe(), next }
    }

    /// Entries with `seq >= from` (contiguous in the ring), and how many before them are gone.
    fn read_from(&self, from: i64) -> (Vec<ConsoleEntry>, u64) {
        let s = self.lock();
        let Some(oldest) = s.ring.front().map(|e| e.seq) else { return (Vec::new(), 0) };
        let missed = u64::try_from(oldest - from).unwrap_or(0);
        let start = usize::try_from(from - oldest).unwrap_or(0);
        (s.ring.range(start.min(s.ring.len())..).cloned().collect(), missed)
    }

    /// The sequence number the next line will get.
    pub fn next_seq(&self) -> i64 {
        self.lock().next_seq
    }

    /// Lines dropped by the throttle so far.
    pub fn dropped(&self) -> u64 {
        self.lock().dropped_total
    }
}

/// Follows a console from a sequence number.
#[derive(Debug)]
pub struct ConsoleReader {
    console: Arc<Console>,
    rx: watch::Receiver<i64>,
    next: i64,
}

/// A batch of lines for a reader.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsoleBatch {
    /// Lines in order.
    pub entries: Vec<ConsoleEntry>,
    /// Lines that left the ring before this reader got to them.
    pub missed: u64,
}

impl ConsoleReader {
    /// The next lines, waiting until there are some. `None` once the console is gone.
    pub async fn next(&mut self) -> Option<ConsoleBatch> {
        loop {
            let (entries, missed) = self.console.read_from(self.next);
            if let Some(last) = entries.last() {
                self.next = last.seq + 1;
                return Some(ConsoleBatch { entries, missed });
            }
            self.rx.changed().await.ok()?;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> Timestamp {
        chrono::Utc::now()
    }

    fn config(history: usize, per_window: u32) -> ConsoleConfig {
        ConsoleConfig {
            history,
            max_lines_per_window: per_window,
            window: Duration::from_millis(100),
            max_line_bytes: 16,
        }
    }

    #[test]
    fn ring_keeps_the_newest_lines_and_resumes_from_a_sequence() {
        let c = Console::new(config(3, 100), 10);
        let t = Instant::now();
        for i in 0..5 {
            c.push(LogStream::Stdout, format!("l{i}"), t, now());
        }
        let all: Vec<i64> = c.since(None).iter().map(|e| e.seq).collect();
        assert_eq!(all, vec![12, 13, 14]);
        let after: Vec<String> = c.since(Some(12)).into_iter().map(|e| e.line.to_string()).collect();
        assert_eq!(after, vec!["l3", "l4"]);
        assert_eq!(c.next_seq(), 15);
    }

    #[test]
    fn throttle_drops_the_excess_with_one_notice_per_window() {
        let c = Console::new(config(100, 3), 1);
        let t0 = Instant::now();
        let mut accepted = 0;
        let mut notices = 0;
        for i in 0..10 {
            match c.push(LogStream::Stdout, format!("x{i}"), t0, now()) {
                Pushed::Accepted(_) => accepted += 1,
                Pushed::Throttled(Some(n)) => {
                    notices += 1;
                    assert_eq!(n.stream, LogStream::System);
                }
                Pushed::Throttled(None) => {}
            }
        }
        assert_eq!((accepted, notices, c.dropped()), (3, 1, 7));
        // The next window accepts again.
        let later = t0 + Duration::from_millis(150);
        assert!(matches!(c.push(LogStream::Stdout, "y".into(), later, now()), Pushed::Accepted(_)));
    }

    #[test]
    fn long_lines_are_cut_on_a_char_boundary() {
        let c = Console::new(config(10, 10), 1);
        let e = c.system("ééééééééééééé".into(), now());
        assert!(e.line.ends_with("[line cut]"));
        assert!(e.line.len() <= 16 + " [line cut]".len());
    }

    #[tokio::test]
    async fn readers_get_every_line_in_order_and_resume() {
        let c = Arc::new(Console::new(config(100, 1000), 1));
        let mut live = c.reader(None);
        let mut resumed = c.reader(Some(20));
        for i in 0..50 {
            c.push(LogStream::Stdout, format!("{i}"), Instant::now(), now());
        }
        let mut got = Vec::new();
        while got.len() < 50 {
            let batch = live.next().await.expect("batch");
            assert_eq!(batch.missed, 0);
            got.extend(batch.entries.into_iter().map(|e| e.line.to_string()));
        }
        assert_eq!(got, (0..50).map(|i| i.to_string()).collect::<Vec<_>>());
        let batch = resumed.next().await.expect("batch");
        assert_eq!(batch.entries.first().map(|e| e.seq), Some(21));
    }

    #[tokio::test]
    async fn a_reader_that_falls_behind_the_ring_is_told_what_it_missed() {
        let c = Arc::new(Console::new(config(10, 1000), 1));
        let mut slow = c.reader(None);
        for i in 0..25 {
            c.push(LogStream::Stdout, format!("{i}"), Instant::now(), now());
        }
        let batch = slow.next().await.expect("batch");
        assert_eq!(batch.missed, 15);
        assert_eq!(batch.entries.len(), 10);
        assert_eq!(batch.entries[0].seq, 16);
    }
}
