//! Structured logs with `tracing`: text or JSON on stderr, filter from `RUST_LOG` or config.
//!
//! Every line logged while a request runs carries its request id (`request{request_id=…}:` in
//! text, `"request_id"` in JSON). The id travels with the task serving the request
//! ([`scope`]), not in a `tracing` span: a span per request (its registry slot, its formatted
//! fields, an enter and exit per poll) cost more than the access line itself. The access line
//! ([`access`]) is formatted here, by hand, straight into the log queue.
//!
//! Lines are appended to one shared buffer that a writer thread empties, so a request never
//! waits on stderr (a slow terminal, a full pipe to the log collector) and never wakes a thread
//! per line. When the buffer holds [`QUEUE_BYTES`], lines are dropped and counted — the count is
//! logged once the writer catches up — rather than slowing every request down. The returned
//! [`LogGuard`] flushes what is queued when dropped.

use std::io::Write;
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::JoinHandle;

use std::fmt::Write as _;
use std::sync::OnceLock;

use axum::http::HeaderValue;
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::{JsonFields, Writer};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields, MakeWriter};
use tracing_subscriber::registry::LookupSpan;
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
    let json = log.format == "json";
    let queue = writer.0.clone();
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(writer).with_ansi(ansi);
    let installed = if json {
        builder.fmt_fields(JsonFields::new()).event_format(Lines { json: true }).try_init()
    } else {
        builder.event_format(Lines { json: false }).try_init()
    };
    // The access lines go to the same queue, in the same format, when this subscriber is the
    // one installed (a test may have installed its own first).
    if installed.is_ok() {
        let _ = ACCESS.set(AccessSink { queue, json, ansi });
    }
    guard
}

// ---- Request ids -----------------------------------------------------------------------------

tokio::task_local! {
    static REQUEST_ID: RequestId;
}

/// The id of one request (`X-Request-Id`): the caller's, when it is 1 to 128 visible ASCII
/// characters, otherwise a new UUID. Cheap to clone (a shared buffer).
#[derive(Clone, Debug)]
pub struct RequestId(HeaderValue);

impl RequestId {
    pub const MAX_LEN: usize = 128;

    /// The caller's id if it is usable in a log line, a new one otherwise.
    pub fn from_header(v: Option<&HeaderValue>) -> Self {
        match v {
            Some(v) if (1..=Self::MAX_LEN).contains(&v.len()) && v.as_bytes().iter().all(|b| b.is_ascii_graphic()) => {
                Self(v.clone())
            }
            _ => Self::new(),
        }
    }

    /// A new random id (UUID v4, hyphenated, lower case).
    fn new() -> Self {
        let mut buf = [0u8; uuid::fmt::Hyphenated::LENGTH];
        let s = uuid::Uuid::new_v4().hyphenated().encode_lower(&mut buf);
        Self(HeaderValue::from_str(s).unwrap_or_else(|_| HeaderValue::from_static("-")))
    }

    pub fn as_str(&self) -> &str {
        // Only visible ASCII gets in (above).
        self.0.to_str().unwrap_or("")
    }

    pub fn header_value(&self) -> &HeaderValue {
        &self.0
    }
}

/// Runs `f` as the request `id`: every line it logs carries the id.
pub fn scope<F: std::future::Future>(id: RequestId, f: F) -> impl std::future::Future<Output = F::Output> {
    REQUEST_ID.scope(id, f)
}

/// The id of the request the current task serves, to hand to a blocking thread ([`in_request`]).
pub fn current_request_id() -> Option<RequestId> {
    REQUEST_ID.try_with(RequestId::clone).ok()
}

/// Runs `f` (on a blocking thread) as the request `id`.
pub fn in_request<R>(id: Option<RequestId>, f: impl FnOnce() -> R) -> R {
    match id {
        Some(id) => REQUEST_ID.sync_scope(id, f),
        None => f(),
    }
}

fn with_request_id<R>(f: impl FnOnce(Option<&str>) -> R) -> R {
    // A clone is a reference count: only lines logged by handlers come here.
    match REQUEST_ID.try_with(RequestId::clone) {
        Ok(id) => f(Some(id.as_str())),
        Err(_) => f(None),
    }
}

// ---- Line formats ----------------------------------------------------------------------------

/// The target of the access-log lines, for `RUST_LOG` directives
/// (`RUST_LOG=info,guichet::access=warn` silences them alone).
pub const ACCESS_TARGET: &str = "guichet::access";

struct AccessSink {
    queue: Arc<Queue>,
    json: bool,
    ansi: bool,
}

static ACCESS: OnceLock<AccessSink> = OnceLock::new();

/// Whether access lines are wanted (the log is installed and `guichet::access` is at INFO).
pub fn access_enabled() -> bool {
    ACCESS.get().is_some() && tracing::enabled!(target: ACCESS_TARGET, Level::INFO)
}

/// Queues one access line: `… INFO request{request_id=…}: GET /jwks status=200 latency_us=41`
/// in text, the same fields in JSON. The path only: the query can carry codes and tokens.
pub fn access(request_id: &str, method: &str, path: &str, status: u16, latency_us: u64) {
    let Some(sink) = ACCESS.get() else { return };
    let mut line = String::with_capacity(160);
    write_access(&mut line, sink.json, sink.ansi, request_id, method, path, status, latency_us);
    sink.queue.push(line.as_bytes());
}

#[allow(clippy::too_many_arguments)]
fn write_access(
    out: &mut String,
    json: bool,
    ansi: bool,
    request_id: &str,
    method: &str,
    path: &str,
    status: u16,
    latency_us: u64,
) {
    let mut ts = [0u8; TIMESTAMP_LEN];
    let ts = timestamp(std::time::SystemTime::now(), &mut ts);
    if json {
        out.push_str("{\"timestamp\":\"");
        out.push_str(ts);
        out.push_str("\",\"level\":\"INFO\",\"message\":\"");
        let _ = JsonEscaped(out).write_str(method);
        out.push(' ');
        let _ = JsonEscaped(out).write_str(path);
        out.push_str("\",\"status\":");
        push_u64(out, status.into());
        out.push_str(",\"latency_us\":");
        push_u64(out, latency_us);
        out.push_str(",\"target\":\"");
        out.push_str(ACCESS_TARGET);
        out.push('"');
        if !request_id.is_empty() {
            out.push_str(",\"request_id\":\"");
            let _ = JsonEscaped(out).write_str(request_id);
            out.push('"');
        }
        out.push_str("}\n");
        return;
    }
    let st = Style(ansi);
    let _ = st.timestamp(out, ts);
    let _ = st.level(out, Level::INFO);
    if !request_id.is_empty() {
        let _ = st.request(out, request_id);
        out.push(' ');
    }
    out.push_str(method);
    out.push(' ');
    out.push_str(path);
    out.push(' ');
    let _ = st.field_name(out, "status");
    push_u64(out, status.into());
    out.push(' ');
    let _ = st.field_name(out, "latency_us");
    push_u64(out, latency_us);
    out.push('\n');
}

/// Decimal digits without `core::fmt` (a measurable part of a small request's line).
fn push_u64(out: &mut String, mut n: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.push_str(std::str::from_utf8(&buf[i..]).unwrap_or("0"));
}

const TIMESTAMP_LEN: usize = 27;

/// `2026-11-30T22:16:28.123456Z`, as `tracing_subscriber`'s default timer writes it (UTC,
/// microseconds), without `core::fmt`. Times before 1970 are written as 1970.
fn timestamp(t: std::time::SystemTime, buf: &mut [u8; TIMESTAMP_LEN]) -> &str {
    let d = t.duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let (year, month, day, rem) = crate::domain::UnixTime(d.as_secs().min(i64::MAX as u64) as i64).civil();
    let mut put = |at: usize, width: usize, mut v: u64| {
        for k in (at..at + width).rev() {
            buf[k] = b'0' + (v % 10) as u8;
            v /= 10;
        }
    };
    put(0, 4, year.clamp(0, 9999) as u64);
    put(5, 2, month as u64);
    put(8, 2, day as u64);
    let rem = rem as u64;
    put(11, 2, rem / 3600);
    put(14, 2, rem % 3600 / 60);
    put(17, 2, rem % 60);
    put(20, 6, u64::from(d.subsec_micros()));
    for (at, c) in [(4, b'-'), (7, b'-'), (10, b'T'), (13, b':'), (16, b':'), (19, b'.'), (26, b'Z')] {
        buf[at] = c;
    }
    std::str::from_utf8(buf).unwrap_or("1970-01-01T00:00:00.000000Z")
}

/// The event format of every other line: what `tracing_subscriber`'s full text format writes
/// (timestamp, level, spans, fields; no target) or its flattened JSON, plus the request id of
/// the task that logs it.
struct Lines {
    json: bool,
}

impl<S, N> FormatEvent<S, N> for Lines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(&self, ctx: &FmtContext<'_, S, N>, mut w: Writer<'_>, event: &Event<'_>) -> std::fmt::Result {
        let meta = event.metadata();
        if self.json {
            let mut ts = [0u8; TIMESTAMP_LEN];
            w.write_str("{\"timestamp\":\"")?;
            w.write_str(timestamp(std::time::SystemTime::now(), &mut ts))?;
            write!(w, "\",\"level\":\"{}\"", meta.level())?;
            let mut fields = JsonFieldsOf { w: w.by_ref(), result: Ok(()) };
            event.record(&mut fields);
            fields.result?;
            w.write_str(",\"target\":\"")?;
            JsonEscaped(&mut w).write_str(meta.target())?;
            w.write_char('"')?;
            with_request_id(|id| match id {
                Some(id) => {
                    w.write_str(",\"request_id\":\"")?;
                    JsonEscaped(&mut w).write_str(id)?;
                    w.write_char('"')
                }
                None => Ok(()),
            })?;
            if let Some(scope) = ctx.event_scope() {
                w.write_str(",\"spans\":[")?;
                for (i, span) in scope.from_root().enumerate() {
                    if i > 0 {
                        w.write_char(',')?;
                    }
                    w.write_str("{\"name\":\"")?;
                    JsonEscaped(&mut w).write_str(span.name())?;
                    w.write_char('"')?;
                    let ext = span.extensions();
                    // JsonFields formats a span's fields as one JSON object: splice its members.
                    if let Some(f) = ext.get::<FormattedFields<N>>() {
                        let inner = f.trim().trim_start_matches('{').trim_end_matches('}');
                        if !inner.is_empty() {
                            write!(w, ",{inner}")?;
                        }
                    }
                    w.write_char('}')?;
                }
                w.write_char(']')?;
            }
            return w.write_str("}\n");
        }
        let st = Style(w.has_ansi_escapes());
        let mut ts = [0u8; TIMESTAMP_LEN];
        st.timestamp(&mut w, timestamp(std::time::SystemTime::now(), &mut ts))?;
        st.level(&mut w, *meta.level())?;
        let mut seen = with_request_id(|id| match id {
            Some(id) => st.request(&mut w, id).map(|_| true),
            None => Ok(false),
        })?;
        if let Some(scope) = ctx.event_scope() {
            for span in scope.from_root() {
                st.bold(&mut w, span.name())?;
                let ext = span.extensions();
                if let Some(f) = ext.get::<FormattedFields<N>>() {
                    if !f.is_empty() {
                        st.bold(&mut w, "{")?;
                        write!(w, "{f}")?;
                        st.bold(&mut w, "}")?;
                    }
                }
                w.write_char(':')?;
                seen = true;
            }
        }
        if seen {
            w.write_char(' ')?;
        }
        ctx.field_format().format_fields(w.by_ref(), event)?;
        writeln!(w)
    }
}

/// ANSI styles as `tracing_subscriber` applies them, or none (a file, a pipe).
#[derive(Clone, Copy)]
struct Style(bool);

impl Style {
    fn paint(self, w: &mut impl std::fmt::Write, code: &str, text: &str) -> std::fmt::Result {
        if self.0 {
            write!(w, "\x1b[{code}m{text}\x1b[0m")
        } else {
            w.write_str(text)
        }
    }

    fn bold(self, w: &mut impl std::fmt::Write, text: &str) -> std::fmt::Result {
        self.paint(w, "1", text)
    }

    fn timestamp(self, w: &mut impl std::fmt::Write, ts: &str) -> std::fmt::Result {
        self.paint(w, "2", ts)?;
        w.write_char(' ')
    }

    fn level(self, w: &mut impl std::fmt::Write, level: Level) -> std::fmt::Result {
        let (code, text) = match level {
            Level::TRACE => ("35", "TRACE"),
            Level::DEBUG => ("34", "DEBUG"),
            Level::INFO => ("32", " INFO"),
            Level::WARN => ("33", " WARN"),
            Level::ERROR => ("31", "ERROR"),
        };
        self.paint(w, code, text)?;
        w.write_char(' ')
    }

    /// `request{request_id=…}:`, as the span it replaces was written.
    fn request(self, w: &mut impl std::fmt::Write, id: &str) -> std::fmt::Result {
        self.bold(w, "request")?;
        self.bold(w, "{")?;
        w.write_str("request_id=")?;
        w.write_str(id)?;
        self.bold(w, "}")?;
        w.write_char(':')
    }

    /// `name=`, as `tracing_subscriber` writes a field's name.
    fn field_name(self, w: &mut impl std::fmt::Write, name: &str) -> std::fmt::Result {
        self.paint(w, "3", name)?;
        self.paint(w, "2", "=")
    }
}

/// Writes what it is given as the inside of a JSON string.
struct JsonEscaped<'a, W: std::fmt::Write>(&'a mut W);

impl<W: std::fmt::Write> std::fmt::Write for JsonEscaped<'_, W> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let mut start = 0;
        for (i, c) in s.char_indices() {
            let esc = match c {
                '"' => "\\\"",
                '\\' => "\\\\",
                '\n' => "\\n",
                '\r' => "\\r",
                '\t' => "\\t",
                c if (c as u32) < 0x20 => "",
                _ => continue,
            };
            self.0.write_str(&s[start..i])?;
            if esc.is_empty() {
                write!(self.0, "\\u{:04x}", c as u32)?;
            } else {
                self.0.write_str(esc)?;
            }
            start = i + c.len_utf8();
        }
        self.0.write_str(&s[start..])
    }
}

/// An event's fields as JSON members (`,"name":value`), in the order they were recorded.
struct JsonFieldsOf<'a> {
    w: Writer<'a>,
    result: std::fmt::Result,
}

impl JsonFieldsOf<'_> {
    fn member(&mut self, field: &tracing::field::Field, value: impl FnOnce(&mut Writer<'_>) -> std::fmt::Result) {
        if self.result.is_err() {
            return;
        }
        let w = &mut self.w;
        self.result = (|| {
            w.write_str(",\"")?;
            JsonEscaped(w).write_str(field.name())?;
            w.write_str("\":")?;
            value(w)
        })();
    }

    fn string(&mut self, field: &tracing::field::Field, value: std::fmt::Arguments<'_>) {
        self.member(field, |w| {
            w.write_char('"')?;
            JsonEscaped(w).write_fmt(value)?;
            w.write_char('"')
        });
    }
}

impl tracing::field::Visit for JsonFieldsOf<'_> {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        self.string(field, format_args!("{value:?}"));
    }
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        self.string(field, format_args!("{value}"));
    }
    fn record_error(&mut self, field: &tracing::field::Field, value: &(dyn std::error::Error + 'static)) {
        self.string(field, format_args!("{value}"));
    }
    fn record_i64(&mut self, field: &tracing::field::Field, value: i64) {
        self.member(field, |w| write!(w, "{value}"));
    }
    fn record_u64(&mut self, field: &tracing::field::Field, value: u64) {
        self.member(field, |w| write!(w, "{value}"));
    }
    fn record_bool(&mut self, field: &tracing::field::Field, value: bool) {
        self.member(field, |w| write!(w, "{value}"));
    }
    fn record_f64(&mut self, field: &tracing::field::Field, value: f64) {
        if value.is_finite() {
            self.member(field, |w| write!(w, "{value}"));
        } else {
            self.string(field, format_args!("{value}"));
        }
    }
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
        self.queue.push(&self.buf);
    }
}

impl Queue {
    /// Appends whole lines, or drops and counts them when the queue is full.
    fn push(&self, line: &[u8]) {
        if line.is_empty() {
            return;
        }
        let was_empty = {
            let mut p = self.lock();
            if p.bytes.len() + line.len() > QUEUE_BYTES {
                p.dropped += 1;
                return;
            }
            let was_empty = p.bytes.is_empty();
            p.bytes.extend_from_slice(line);
            was_empty
        };
        // Only the first line of a batch wakes the writer; it then waits WRITE_EVERY so that
        // the lines that follow go out with it.
        if was_empty {
            self.ready.notify_one();
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

    fn id(s: &str) -> RequestId {
        RequestId::from_header(Some(&HeaderValue::from_str(s).unwrap()))
    }

    /// `2026-11-30T22:16:28.123456Z` at the start of a text line.
    fn split_timestamp(line: &str) -> (&str, &str) {
        let (ts, rest) = line.split_once(' ').unwrap();
        assert_eq!(ts.len(), 27, "{ts}");
        assert!(ts.ends_with('Z') && ts.as_bytes()[10] == b'T' && ts.as_bytes()[19] == b'.', "{ts}");
        (ts, rest)
    }

    #[test]
    fn request_ids_are_the_callers_when_usable_in_a_log_line() {
        assert_eq!(id("abc-123").as_str(), "abc-123");
        assert_eq!(id(&"x".repeat(128)).as_str().len(), 128);
        for bad in ["", "two words", "tab\there", &"x".repeat(129)] {
            let replaced = RequestId::from_header(Some(&HeaderValue::from_str(bad).unwrap()));
            assert_eq!(replaced.as_str().len(), 36, "{bad:?} kept");
            assert!(uuid::Uuid::parse_str(replaced.as_str()).is_ok());
        }
        let non_ascii = HeaderValue::from_bytes("caf\u{e9}".as_bytes()).unwrap();
        assert_eq!(RequestId::from_header(Some(&non_ascii)).as_str().len(), 36);
        assert_ne!(RequestId::from_header(None).as_str(), RequestId::from_header(None).as_str());
    }

    #[test]
    fn timestamps_as_tracing_writes_them() {
        let at = |secs: u64, micros: u32| {
            let mut buf = [0u8; TIMESTAMP_LEN];
            let t = std::time::UNIX_EPOCH + std::time::Duration::new(secs, micros * 1000);
            timestamp(t, &mut buf).to_owned()
        };
        assert_eq!(at(0, 0), "1970-01-01T00:00:00.000000Z");
        assert_eq!(at(951_782_400, 0), "2000-02-29T00:00:00.000000Z");
        assert_eq!(at(1_709_164_800, 0), "2024-02-29T00:00:00.000000Z");
        assert_eq!(at(1_796_084_188, 123_456), "2026-12-01T00:16:28.123456Z");
        assert_eq!(at(4_102_444_799, 999_999), "2099-12-31T23:59:59.999999Z");
        let mut buf = [0u8; TIMESTAMP_LEN];
        let before = std::time::UNIX_EPOCH - std::time::Duration::from_secs(5);
        assert_eq!(timestamp(before, &mut buf), "1970-01-01T00:00:00.000000Z");
        // The same shape as tracing_subscriber's own timer.
        let mut theirs = String::new();
        tracing_subscriber::fmt::time::FormatTime::format_time(
            &tracing_subscriber::fmt::time::SystemTime,
            &mut Writer::new(&mut theirs),
        )
        .unwrap();
        let ours = timestamp(std::time::SystemTime::now(), &mut buf);
        assert_eq!(theirs.len(), ours.len(), "{theirs} / {ours}");
        assert_eq!(theirs[..13], ours[..13], "{theirs} / {ours}");
        let mut n = String::new();
        for v in [0, 7, 10, 200, 65_535, u64::MAX] {
            n.clear();
            push_u64(&mut n, v);
            assert_eq!(n, v.to_string());
        }
    }

    #[test]
    fn access_lines_in_text_and_json() {
        let mut text = String::new();
        write_access(&mut text, false, false, "req-1", "GET", "/jwks", 200, 41);
        let (_, rest) = split_timestamp(&text);
        assert_eq!(rest, " INFO request{request_id=req-1}: GET /jwks status=200 latency_us=41\n");

        let mut coloured = String::new();
        write_access(&mut coloured, false, true, "req-1", "GET", "/jwks", 200, 41);
        assert!(coloured.contains("\x1b[32m INFO\x1b[0m"), "{coloured:?}");

        let mut json = String::new();
        write_access(&mut json, true, false, "req-1", "POST", "/a\"b\\c", 404, 7);
        assert!(json.ends_with("}\n") && json.matches('\n').count() == 1, "{json}");
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(v["level"], "INFO");
        assert_eq!(v["message"], "POST /a\"b\\c");
        assert_eq!(v["status"], 404);
        assert_eq!(v["latency_us"], 7);
        assert_eq!(v["target"], ACCESS_TARGET);
        assert_eq!(v["request_id"], "req-1");
        assert_eq!(v["timestamp"].as_str().unwrap().len(), 27);
    }

    /// Formats the events `f` logs with [`Lines`], as `init` installs it.
    fn logged(json: bool, f: impl FnOnce()) -> String {
        let sink = Sink::default();
        let out = sink.clone();
        let builder = tracing_subscriber::fmt().with_writer(move || out.clone()).with_ansi(false);
        if json {
            let sub = builder.fmt_fields(JsonFields::new()).event_format(Lines { json: true }).finish();
            tracing::subscriber::with_default(sub, f);
        } else {
            let sub = builder.event_format(Lines { json: false }).finish();
            tracing::subscriber::with_default(sub, f);
        }
        let text = String::from_utf8(sink.0.lock().unwrap().clone()).unwrap();
        text
    }

    #[test]
    fn lines_logged_while_serving_a_request_carry_its_id() {
        let text = logged(false, || {
            tracing::info!("outside");
            in_request(Some(id("req-7")), || {
                tracing::warn!(user = 3, reason = ?"gone", "sign-in refused");
                let _s = tracing::info_span!("federation", org = "acme").entered();
                tracing::error!(error = "boom", "callback failed");
            });
        });
        let lines: Vec<&str> = text.lines().map(|l| split_timestamp(l).1).collect();
        assert_eq!(
            lines,
            [
                " INFO outside",
                " WARN request{request_id=req-7}: sign-in refused user=3 reason=\"gone\"",
                "ERROR request{request_id=req-7}:federation{org=\"acme\"}: callback failed error=\"boom\"",
            ]
        );

        let json = logged(true, || {
            tracing::info!("outside");
            in_request(Some(id("req-8")), || {
                let _s = tracing::info_span!("federation", org = "acme").entered();
                tracing::warn!(user = 3, ok = true, ratio = 0.5, text = "a \"quoted\"\nline", "refused");
            });
        });
        let lines: Vec<serde_json::Value> = json.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(lines[0]["message"], "outside");
        assert_eq!(lines[0]["level"], "INFO");
        assert!(lines[0].get("request_id").is_none() && lines[0].get("spans").is_none());
        let v = &lines[1];
        assert_eq!(v["message"], "refused");
        assert_eq!(v["level"], "WARN");
        assert_eq!(v["user"], 3);
        assert_eq!(v["ok"], true);
        assert_eq!(v["ratio"], 0.5);
        assert_eq!(v["text"], "a \"quoted\"\nline");
        assert_eq!(v["request_id"], "req-8");
        assert_eq!(v["target"], module_path!());
        assert_eq!(v["spans"], serde_json::json!([{ "name": "federation", "org": "acme" }]));
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
