//! [`Events`]: what tells open dashboard pages to refresh — `GET /dashboard/events`, a
//! `text/event-stream`.
//!
//! One poller per server, not one per page: while at least one stream is open, a task reads
//! the [`Stamp`] every second — two index lookups (the audit chain's last entry, and the open
//! incidents through their status index), however large the audit file — and publishes it on
//! a `watch` channel; it stops when the last stream closes. Each stream sends `runs` when the
//! chain moved (a run started, recorded a step or ended) and `incidents` when the open
//! incidents changed (opened, climbed a level, acknowledged, resolved); the event's id is the
//! stamp, so a reconnecting browser (`Last-Event-ID`) or a page that names the stamp it was
//! rendered at (`?since=`) is told at once about what happened in between.
//!
//! Bounded: at most [`MAX_STREAMS`] streams at a time (more: 503), and each ends after
//! [`STREAM_LIFETIME`] — the browser reconnects by itself, and credentials are checked again —
//! so a logout or an expired session stops a stream within that time, and a server's graceful
//! stop never waits on an open dashboard longer than that.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::response::sse::Event;
use futures::Stream;
use rusqlite::{Connection, OpenFlags};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};

/// Streams open at a time.
pub const MAX_STREAMS: usize = 64;
/// How long one stream lasts before the browser is made to reconnect.
pub const STREAM_LIFETIME: Duration = Duration::from_secs(20);
/// How often the poller reads the stamp.
pub const POLL: Duration = Duration::from_secs(1);
/// How soon a browser reconnects after a stream ends.
const RETRY: Duration = Duration::from_millis(500);

/// Where the audit file stands, as far as the pages are concerned.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stamp {
    /// The audit chain's last sequence number: every run's insert, step and end moves it.
    pub runs: i64,
    /// The open and acknowledged incidents: how many, and their latest change.
    pub incidents: String,
}

impl Stamp {
    /// Read it (two index lookups).
    ///
    /// # Errors
    /// When `SQLite` fails.
    pub fn read(conn: &Connection) -> rusqlite::Result<Stamp> {
        conn.query_row(
            "SELECT (SELECT COALESCE(MAX(seq), 0) FROM audit_chain), \
                    (SELECT COUNT(*) || '@' || COALESCE(MAX(updated_at), '') FROM incidents \
                     WHERE status IN ('open', 'acked'))",
            [],
            |r| {
                Ok(Stamp {
                    runs: r.get(0)?,
                    incidents: r.get(1)?,
                })
            },
        )
    }

    /// As an event id and a page's `data-stamp`: `RUNS/INCIDENTS`.
    #[must_use]
    pub fn id(&self) -> String {
        format!("{}/{}", self.runs, self.incidents)
    }

    /// From [`Stamp::id`]; `None` when it is not one.
    #[must_use]
    pub fn parse(id: &str) -> Option<Stamp> {
        let (runs, incidents) = id.split_once('/')?;
        Some(Stamp {
            runs: runs.parse().ok()?,
            incidents: incidents.to_owned(),
        })
    }

    /// The events that tell a page at `self` about `now`.
    fn changes(&self, now: &Stamp) -> Vec<Event> {
        let id = now.id();
        let mut out = Vec::new();
        if self.runs != now.runs {
            out.push(Event::default().event("runs").id(&id).data(&id));
        }
        if self.incidents != now.incidents {
            out.push(Event::default().event("incidents").id(&id).data(&id));
        }
        out
    }
}

/// The shared poller and the open streams.
pub struct Events {
    db: PathBuf,
    /// A read-only connection of the poller's and the pages' stamps, opened when first needed.
    conn: Arc<Mutex<Option<Connection>>>,
    tx: watch::Sender<Stamp>,
    /// Whether the poller runs; taken with a receiver's creation so none is left without one.
    polling: Mutex<bool>,
    streams: Arc<Semaphore>,
}

impl Events {
    /// For the audit file `db`.
    #[must_use]
    pub fn new(db: PathBuf) -> Events {
        Events {
            db,
            conn: Arc::new(Mutex::new(None)),
            tx: watch::Sender::new(Stamp::default()),
            polling: Mutex::new(false),
            streams: Arc::new(Semaphore::new(MAX_STREAMS)),
        }
    }

    /// The stamp now, read off the async threads; `None` when the audit file cannot be read.
    pub async fn stamp(&self) -> Option<Stamp> {
        let conn = Arc::clone(&self.conn);
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || read_stamp(&conn, &db))
            .await
            .ok()
            .flatten()
    }

    /// A stream for a page rendered at `since` (else: from now on); `None` when
    /// [`MAX_STREAMS`] are open.
    pub async fn stream(
        self: &Arc<Self>,
        since: Option<Stamp>,
    ) -> Option<impl Stream<Item = Result<Event, Infallible>> + Send + 'static> {
        let permit = Arc::clone(&self.streams).try_acquire_owned().ok()?;
        let rx = self.subscribe();
        let now = self.stamp().await.unwrap_or_default();
        let last = since.unwrap_or_else(|| now.clone());
        let mut pending: VecDeque<Event> = VecDeque::from([Event::default().retry(RETRY)]);
        pending.extend(last.changes(&now));
        let live = Live {
            rx,
            last: now,
            pending,
            until: tokio::time::Instant::now() + STREAM_LIFETIME,
            _permit: permit,
        };
        Some(futures::stream::unfold(live, Live::next))
    }

    /// A receiver of the poller's stamps, starting the poller if it is not running.
    fn subscribe(self: &Arc<Self>) -> watch::Receiver<Stamp> {
        let mut polling = self.polling.lock().unwrap_or_else(PoisonError::into_inner);
        let rx = self.tx.subscribe();
        if !*polling {
            *polling = true;
            tokio::spawn(Arc::clone(self).poll());
        }
        rx
    }

    /// Read the stamp every [`POLL`] and publish changes; stop when no stream listens.
    async fn poll(self: Arc<Self>) {
        let mut tick = tokio::time::interval(POLL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            {
                let mut polling = self.polling.lock().unwrap_or_else(PoisonError::into_inner);
                if self.tx.receiver_count() == 0 {
                    *polling = false;
                    return;
                }
            }
            if let Some(now) = self.stamp().await {
                self.tx.send_if_modified(|s| {
                    let changed = *s != now;
                    *s = now;
                    changed
                });
            }
        }
    }
}

/// The stamp through the shared read-only connection, opening it when needed.
fn read_stamp(conn: &Mutex<Option<Connection>>, db: &std::path::Path) -> Option<Stamp> {
    let mut conn = conn.lock().unwrap_or_else(PoisonError::into_inner);
    if conn.is_none() {
        let c = Connection::open_with_flags(
            db,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .ok()?;
        c.busy_timeout(Duration::from_secs(1)).ok()?;
        *conn = Some(c);
    }
    let stamp = Stamp::read(conn.as_ref()?);
    if stamp.is_err() {
        // Opened afresh next time (the file may have been replaced).
        *conn = None;
    }
    stamp.ok()
}

/// One open stream.
struct Live {
    rx: watch::Receiver<Stamp>,
    last: Stamp,
    pending: VecDeque<Event>,
    until: tokio::time::Instant,
    _permit: OwnedSemaphorePermit,
}

impl Live {
    async fn next(mut self) -> Option<(Result<Event, Infallible>, Live)> {
        loop {
            if let Some(e) = self.pending.pop_front() {
                return Some((Ok(e), self));
            }
            tokio::select! {
                changed = self.rx.changed() => {
                    changed.ok()?;
                    let now = self.rx.borrow_and_update().clone();
                    self.pending.extend(self.last.changes(&now));
                    self.last = now;
                }
                () = tokio::time::sleep_until(self.until) => return None,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stamp_round_trips_through_its_id() {
        let s = Stamp {
            runs: 42,
            incidents: "2@2030-01-01T00:00:00.000Z".into(),
        };
        assert_eq!(s.id(), "42/2@2030-01-01T00:00:00.000Z");
        assert_eq!(Stamp::parse(&s.id()), Some(s));
        assert_eq!(Stamp::parse("x/1"), None);
        assert_eq!(Stamp::parse("17"), None);
    }

    #[test]
    fn changes_name_what_moved() {
        let a = Stamp {
            runs: 1,
            incidents: "0@".into(),
        };
        let mut b = a.clone();
        assert!(a.changes(&b).is_empty());
        b.runs = 2;
        assert_eq!(a.changes(&b).len(), 1);
        b.incidents = "1@2030-01-01T00:00:00.000Z".into();
        assert_eq!(a.changes(&b).len(), 2);
    }
}
