//! Structured logs with `tracing`: text or JSON on stderr, filter from `RUST_LOG` or config.
//!
//! Lines are handed to a writer thread through a bounded channel, so a request never waits on
//! stderr (a slow terminal, a full pipe to the log collector). When the channel is full, lines
//! are dropped and counted — the count is logged once the writer catches up — rather than
//! slowing every request down. The returned [`LogGuard`] flushes what is queued when dropped.

use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::Arc;
use std::thread::JoinHandle;

use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::EnvFilter;

use crate::config::LogSettings;

/// Lines queued for the writer thread at most.
const QUEUE_LINES: usize = 16 * 1024;

pub fn init(log: &LogSettings) -> LogGuard {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&log.level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let (writer, guard) = background_stderr();
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(writer);
    let _ = if log.format == "json" {
        builder.json().flatten_event(true).with_current_span(true).try_init()
    } else {
        builder.with_target(false).try_init()
    };
    guard
}

/// Keeps the log writer thread alive; dropping it flushes the queued lines.
pub struct LogGuard {
    tx: Option<SyncSender<Vec<u8>>>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for LogGuard {
    fn drop(&mut self) {
        // The subscriber keeps its own sender; ask the thread to finish with an empty line.
        if let Some(tx) = self.tx.take() {
            let _ = tx.send(Vec::new());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[derive(Clone)]
pub struct QueueWriter {
    tx: SyncSender<Vec<u8>>,
    dropped: Arc<AtomicU64>,
}

/// One log line being formatted; sent as a whole when dropped.
pub struct Line {
    buf: Vec<u8>,
    queue: QueueWriter,
}

impl Write for Line {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for Line {
    fn drop(&mut self) {
        if self.buf.is_empty() {
            return;
        }
        match self.queue.tx.try_send(std::mem::take(&mut self.buf)) {
            Ok(()) | Err(TrySendError::Disconnected(_)) => {}
            Err(TrySendError::Full(_)) => {
                self.queue.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

impl<'a> MakeWriter<'a> for QueueWriter {
    type Writer = Line;
    fn make_writer(&'a self) -> Line {
        Line { buf: Vec::with_capacity(256), queue: self.clone() }
    }
}

fn background_stderr() -> (QueueWriter, LogGuard) {
    let (tx, rx) = sync_channel::<Vec<u8>>(QUEUE_LINES);
    let dropped = Arc::new(AtomicU64::new(0));
    let d = dropped.clone();
    let thread = std::thread::Builder::new().name("log-writer".into()).spawn(move || write_lines(rx, d)).ok();
    (QueueWriter { tx: tx.clone(), dropped }, LogGuard { tx: Some(tx), thread })
}

/// How often the writer thread wakes to write what was queued. It is never woken per line:
/// a request only appends to the queue, with no system call and no thread wake-up.
const WRITE_EVERY: std::time::Duration = std::time::Duration::from_millis(20);

fn write_lines(rx: Receiver<Vec<u8>>, dropped: Arc<AtomicU64>) {
    use std::sync::mpsc::TryRecvError;
    // Not `stderr().lock()` held for the thread's life: the rest of the process (`eprintln!`)
    // must still be able to write; each flush takes the lock briefly.
    let mut out = std::io::BufWriter::with_capacity(64 * 1024, std::io::stderr());
    loop {
        std::thread::sleep(WRITE_EVERY);
        // Everything queued, then one flush: a few syscalls per interval, whatever the load.
        loop {
            match rx.try_recv() {
                Ok(l) if l.is_empty() => {
                    let _ = out.flush();
                    return;
                }
                Ok(l) => {
                    let _ = out.write_all(&l);
                }
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => {
                    let _ = out.flush();
                    return;
                }
            }
        }
        let lost = dropped.swap(0, Ordering::Relaxed);
        if lost > 0 {
            let _ = writeln!(out, "guichet: {lost} log line(s) dropped: the log output could not keep up");
        }
        let _ = out.flush();
    }
}
