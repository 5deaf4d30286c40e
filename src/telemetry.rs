//! Structured logs with `tracing`: text or JSON on stderr, filter from `RUST_LOG` or config.
//!
//! Lines are appended to one shared buffer that a writer thread empties, so a request never
//! waits on stderr (a slow terminal, a full pipe to the log collector) and never wakes a thread
//! per line. When the buffer holds [`QUEUE_BYTES`], lines are dropped and counted — the count is
//! logged once the writer catches up — rather than slowing every request down. The returned
//! [`LogGuard`] flushes what is queued when dropped.

use std::io::Write;
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::JoinHandle;

use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::EnvFilter;

use crate::config::LogSettings;

/// Bytes queued for the writer thread at most (some 16 000 access-log lines).
const QUEUE_BYTES: usize = 4 << 20;
/// A buffer that grew past this during a burst is given back once written.
const KEEP_BYTES: usize = 64 << 10;

pub fn init(log: &LogSettings) -> LogGuard {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&log.level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let (writer, guard) = background_stderr();
    // Colours only for a terminal: escape codes in a file or a log collector's pipe are noise
    // (and formatting them cost a few percent of a small request).
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(writer).with_ansi(ansi);
    let _ = if log.format == "json" {
        builder.json().flatten_event(true).with_current_span(true).try_init()
    } else {
        builder.with_target(false).try_init()
    };
    guard
}

/// Keeps the log writer thread alive; dropping it flushes the queued lines.
pub struct LogGuard {
    queue: Arc<Queue>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for LogGuard {
    fn drop(&mut self) {
        self.queue.lock().closing = true;
        self.queue.ready.notify_one();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// What the requests append to and the writer thread takes.
struct Queue {
    state: Mutex<Pending>,
    /// Signalled when the first line lands in an empty buffer, and on close.
    ready: Condvar,
}

#[derive(Default)]
struct Pending {
    bytes: Vec<u8>,
    dropped: u64,
    closing: bool,
}

impl Queue {
    fn lock(&self) -> std::sync::MutexGuard<'_, Pending> {
        // A panic while holding the lock leaves whole lines behind: keep logging.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[derive(Clone)]
pub struct QueueWriter(Arc<Queue>);

/// One log line being formatted; queued as a whole when dropped.
pub struct Line {
    buf: Vec<u8>,
    queue: Arc<Queue>,
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
        let was_empty = {
            let mut p = self.queue.lock();
            if p.bytes.len() + self.buf.len() > QUEUE_BYTES {
                p.dropped += 1;
                return;
            }
            let was_empty = p.bytes.is_empty();
            p.bytes.extend_from_slice(&self.buf);
            was_empty
        };
        // Only the first line of a batch wakes the writer; it then waits WRITE_EVERY so that
        // the lines that follow go out with it.
        if was_empty {
            self.queue.ready.notify_one();
        }
    }
}

impl<'a> MakeWriter<'a> for QueueWriter {
    type Writer = Line;
    fn make_writer(&'a self) -> Line {
        Line { buf: Vec::with_capacity(256), queue: self.0.clone() }
    }
}

fn background_stderr() -> (QueueWriter, LogGuard) {
    background(std::io::stderr())
}

fn background<W: Write + Send + 'static>(out: W) -> (QueueWriter, LogGuard) {
    let queue = Arc::new(Queue { state: Mutex::new(Pending::default()), ready: Condvar::new() });
    let q = queue.clone();
    let thread = std::thread::Builder::new().name("log-writer".into()).spawn(move || write_lines(&q, out)).ok();
    (QueueWriter(queue.clone()), LogGuard { queue, thread })
}

/// How long the writer thread lets lines gather once woken: a few system calls per interval,
/// whatever the load. Idle, it sleeps until a line comes.
const WRITE_EVERY: std::time::Duration = std::time::Duration::from_millis(20);

fn write_lines(queue: &Queue, mut out: impl Write) {
    // stderr is not locked for the thread's life: the rest of the process (`eprintln!`) must
    // still be able to write; each write takes its lock briefly.
    let mut spare = Vec::new();
    loop {
        {
            let mut p = queue.lock();
            while p.bytes.is_empty() && p.dropped == 0 && !p.closing {
                p = queue.ready.wait(p).unwrap_or_else(PoisonError::into_inner);
            }
            if !p.closing {
                drop(p);
                std::thread::sleep(WRITE_EVERY);
            }
        }
        let (dropped, closing) = {
            let mut p = queue.lock();
            std::mem::swap(&mut p.bytes, &mut spare);
            (std::mem::take(&mut p.dropped), p.closing)
        };
        let _ = out.write_all(&spare);
        if dropped > 0 {
            let _ = writeln!(out, "guichet: {dropped} log line(s) dropped: the log output could not keep up");
        }
        let _ = out.flush();
        spare.clear();
        if spare.capacity() > KEEP_BYTES {
            spare = Vec::new();
        }
        if closing && queue.lock().bytes.is_empty() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone, Default)]
    struct Sink(Arc<Mutex<Vec<u8>>>);

    impl Write for Sink {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn line(w: &QueueWriter, text: &str) {
        let mut l = w.make_writer();
        l.write_all(text.as_bytes()).unwrap();
    }

    #[test]
    fn lines_are_written_in_order_and_flushed_on_close() {
        let sink = Sink::default();
        let (w, guard) = background(sink.clone());
        for i in 0..1000 {
            line(&w, &format!("line {i}\n"));
        }
        drop(guard);
        let out = String::from_utf8(sink.0.lock().unwrap().clone()).unwrap();
        let expected: String = (0..1000).map(|i| format!("line {i}\n")).collect();
        assert_eq!(out, expected);
    }

    #[test]
    fn an_idle_writer_still_writes_a_late_line() {
        let sink = Sink::default();
        let (w, _guard) = background(sink.clone());
        line(&w, "first\n");
        std::thread::sleep(WRITE_EVERY * 5);
        line(&w, "second\n");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while sink.0.lock().unwrap().as_slice() != b"first\nsecond\n" {
            assert!(std::time::Instant::now() < deadline, "not written: {:?}", sink.0.lock().unwrap());
            std::thread::sleep(WRITE_EVERY);
        }
    }

    #[test]
    fn a_full_queue_drops_lines_and_says_how_many() {
        let sink = Sink::default();
        let (w, guard) = background(sink.clone());
        // Fill the queue while the writer cannot take it (the lock is held).
        let big = "x".repeat(QUEUE_BYTES / 2 - 1) + "\n";
        {
            let mut p = w.0.lock();
            p.bytes.extend_from_slice(big.as_bytes());
            p.bytes.extend_from_slice(big.as_bytes());
        }
        line(&w, "lost 1\n");
        line(&w, "lost 2\n");
        drop(guard);
        let out = String::from_utf8(sink.0.lock().unwrap().clone()).unwrap();
        assert!(!out.contains("lost"));
        assert!(
            out.ends_with("guichet: 2 log line(s) dropped: the log output could not keep up\n"),
            "{}",
            &out[out.len() - 100..]
        );
        assert_eq!(
            out.len(),
            2 * big.len() + "guichet: 2 log line(s) dropped: the log output could not keep up\n".len()
        );
    }
}
