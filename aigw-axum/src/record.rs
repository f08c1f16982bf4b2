//! Where finished exchanges go: the extension point for access logs and metrics.

use aigw_core::exchange::ExchangeRecord;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

/// Receives one [`ExchangeRecord`] per finished request (success, error or client
/// hang-up). Called on the request's task; implementations must not block.
pub trait RecordSink: Send + Sync + 'static {
    /// Consumes a finished exchange.
    fn record(&self, record: &ExchangeRecord);
}

/// Writes one structured `tracing` event per request, with no prompt text.
#[derive(Debug, Clone, Copy, Default)]
pub struct TracingSink;

impl RecordSink for TracingSink {
    fn record(&self, r: &ExchangeRecord) {
        let cost = r.spend_micros.map(aigw_core::pricing::format_micros);
        tracing::info!(
            target: "aigw::access",
            endpoint = r.endpoint.map(|e| e.operation_name()),
            client = r.client.as_deref(),
            route = r.route.as_deref(),
            backend = r.backend.as_deref(),
            provider = r.provider,
            request_model = %r.request_model,
            response_model = r.response_model.as_deref(),
            status = r.status.map(|s| s.as_u16()),
            stream = r.stream,
            attempts = r.attempts,
            input_tokens = r.usage.input,
            output_tokens = r.usage.output,
            total_tokens = r.usage.total_or_sum(),
            audio_ms = r.usage.audio_ms,
            input_characters = r.usage.characters,
            cost_usd = cost.as_deref(),
            images = r.usage.images,
            token_source = r.usage_source.as_str(),
            latency_ms = r.latency.map(|d| d.as_secs_f64() * 1e3),
            ttfb_ms = r.time_to_first_byte.map(|d| d.as_secs_f64() * 1e3),
            error = r.error.as_deref(),
            "request"
        );
    }
}

/// Line format of an [`AccessLog`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AccessLogFormat {
    /// The layout of `tracing-subscriber`'s default formatter, without colours.
    #[default]
    Text,
    /// The layout of `tracing-subscriber`'s JSON formatter (one object per line).
    Json,
}

/// How long the first line of a batch may wait in the buffer before it is written.
const FLUSH_DELAY: Duration = Duration::from_millis(20);

/// Buffered bytes that are written at once, without waiting for the delay.
const FLUSH_AT: usize = 64 * 1024;

/// The access log of the standalone gateway: the same fields as [`TracingSink`] (target
/// `aigw::access`, the request span's fields alongside), written as pre-formatted lines
/// into a buffer that is flushed in batches instead of one formatted `tracing` event and
/// one `write` per request.
///
/// A batch is written [`FLUSH_DELAY`] after its first line (by the task of
/// [`AccessLog::spawn_flusher`]), when it reaches 64 KiB, or on [`AccessLog::flush`]
/// (call it on shutdown). Lines are written only while `aigw::access` is enabled at
/// `info` in the process's `tracing` filter, so `--log-level warn` or
/// `RUST_LOG=aigw::access=off` still turns the log off.
#[derive(Clone)]
pub struct AccessLog {
    inner: Arc<AccessLogInner>,
}

struct AccessLogInner {
    format: AccessLogFormat,
    /// Header-mapped attributes printed after the fields
    /// (`OTEL_AIGW_LOG_REQUEST_HEADER_ATTRIBUTES`), set once at start-up.
    attributes: std::sync::OnceLock<Vec<Arc<str>>>,
    buf: Mutex<Pending>,
    /// The output and the spare buffer swapped with `buf` on a flush, so neither side
    /// reallocates in steady state. Locked before `buf`, never the other way round.
    out: Mutex<(Box<dyn Write + Send>, Vec<u8>)>,
    pending: tokio::sync::Notify,
}

impl std::fmt::Debug for AccessLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessLog")
            .field("format", &self.inner.format)
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl AccessLog {
    /// An access log writing to `out`.
    pub fn new(out: impl Write + Send + 'static, format: AccessLogFormat) -> Self {
        Self {
            inner: Arc::new(AccessLogInner {
                format,
                attributes: std::sync::OnceLock::new(),
                buf: Mutex::new(Pending {
                    lines: Vec::with_capacity(FLUSH_AT),
                    checked: Checked::default(),
                }),
                out: Mutex::new((Box::new(out), Vec::with_capacity(FLUSH_AT))),
                pending: tokio::sync::Notify::new(),
            }),
        }
    }

    /// An access log writing to standard error, where the process's other log lines go.
    pub fn stderr(format: AccessLogFormat) -> Self {
        Self::new(std::io::stderr(), format)
    }

    /// Prints these header-mapped attributes of each record's `request_labels` after
    /// its fields (the names of `OTEL_AIGW_LOG_REQUEST_HEADER_ATTRIBUTES`:
    /// `aigw_core::telemetry::Telemetry::log_attributes`). Set once; later calls are
    /// ignored (returns whether this one applied).
    pub fn set_request_attributes(&self, names: Vec<Arc<str>>) -> bool {
        self.inner.attributes.set(names).is_ok()
    }

    /// Writes the buffered lines now.
    pub fn flush(&self) {
        let mut out = lock(&self.inner.out);
        let (writer, spare) = &mut *out;
        {
            let mut buf = lock(&self.inner.buf);
            if buf.lines.is_empty() {
                return;
            }
            std::mem::swap(&mut buf.lines, spare);
        }
        if let Err(e) = writer.write_all(spare).and_then(|()| writer.flush()) {
            tracing::debug!(error = %e, "cannot write the access log");
        }
        spare.clear();
    }

    /// Spawns the task that writes each batch [`FLUSH_DELAY`] after its first line. It
    /// runs for as long as the runtime does.
    pub fn spawn_flusher(&self) -> tokio::task::JoinHandle<()> {
        let log = self.clone();
        tokio::spawn(async move {
            loop {
                log.inner.pending.notified().await;
                tokio::time::sleep(FLUSH_DELAY).await;
                log.flush();
            }
        })
    }

    /// Appends `r`'s line to the pending lines, stamped `now`.
    fn write_line(&self, p: &mut Pending, r: &ExchangeRecord, now: SystemTime) {
        let attrs = self.inner.attributes.get().map_or(&[][..], Vec::as_slice);
        match self.inner.format {
            AccessLogFormat::Text => write_text(&mut p.lines, &mut p.checked, r, attrs, now),
            AccessLogFormat::Json => write_json(&mut p.lines, r, attrs, now),
        }
    }
}

impl RecordSink for AccessLog {
    fn record(&self, r: &ExchangeRecord) {
        if !tracing::enabled!(target: "aigw::access", tracing::Level::INFO) {
            return;
        }
        let now = SystemTime::now();
        let (first, len) = {
            let mut buf = lock(&self.inner.buf);
            let first = buf.lines.is_empty();
            self.write_line(&mut buf, r, now);
            (first, buf.lines.len())
        };
        if len >= FLUSH_AT {
            self.flush();
        } else if first {
            self.inner.pending.notify_one();
        }
    }
}

/// The lines waiting to be written, and what the writer remembers between them.
struct Pending {
    lines: Vec<u8>,
    checked: Checked,
}

/// The last line's route and backend, and whether each needed escaping. Their names
/// are shared by every request they serve (the plan's `Arc<str>`s, made when the
/// configuration is loaded), so a line with the same route or backend as the last one
/// (the same allocation, whose text cannot change while it is held here) skips the
/// check.
#[derive(Default)]
struct Checked {
    route: Option<(Arc<str>, bool)>,
    backend: Option<(Arc<str>, bool)>,
}

/// Whether `v` can be written without escapes, from `slot` when it holds `v` itself.
fn plain_as_last(slot: &mut Option<(Arc<str>, bool)>, v: &Arc<str>) -> bool {
    match slot {
        Some((last, plain)) if Arc::ptr_eq(last, v) => *plain,
        _ => {
            let plain = !needs_escape(v);
            *slot = Some((v.clone(), plain));
            plain
        }
    }
}

/// The span name the request's fields are reported under, as [`TracingSink`] reports
/// them through the `aigw.request` span.
const SPAN_NAME: &str = "aigw.request";

/// `2025-01-31T12:34:56.789012Z`: RFC 3339 in UTC with microseconds, as
/// `tracing-subscriber` stamps its lines. The text up to the second is formatted once
/// per second and thread and reused: the calendar arithmetic and six padded numbers
/// cost more than the rest of a short line's fields.
fn write_timestamp(buf: &mut Vec<u8>, now: SystemTime) {
    let since = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    let secs = since.as_secs();
    SECOND.with(|cached| {
        let mut c = cached.get();
        if c.secs != Some(secs) {
            c = StampedSecond::new(secs);
            cached.set(c);
        }
        buf.extend_from_slice(c.text());
    });
    let [a, b, c, d, e, f] = six_digits(since.subsec_micros());
    buf.extend_from_slice(&[a, b, c, d, e, f, b'Z']);
}

/// `YYYY-MM-DDTHH:MM:SS.` of one second since the epoch.
#[derive(Clone, Copy)]
struct StampedSecond {
    secs: Option<u64>,
    text: [u8; 32],
    len: usize,
}

thread_local! {
    static SECOND: std::cell::Cell<StampedSecond> = const {
        std::cell::Cell::new(StampedSecond {
            secs: None,
            text: [0; 32],
            len: 0,
        })
    };
}

impl StampedSecond {
    fn new(secs: u64) -> Self {
        let mut buf = Vec::with_capacity(32);
        let (y, m, d) = civil_from_days((secs / 86_400) as i64);
        let rem = secs % 86_400;
        push_padded(&mut buf, y.max(0) as u64, 4);
        buf.push(b'-');
        push_padded(&mut buf, u64::from(m), 2);
        buf.push(b'-');
        push_padded(&mut buf, u64::from(d), 2);
        buf.push(b'T');
        push_padded(&mut buf, rem / 3600, 2);
        buf.push(b':');
        push_padded(&mut buf, rem / 60 % 60, 2);
        buf.push(b':');
        push_padded(&mut buf, rem % 60, 2);
        buf.push(b'.');
        let mut text = [0; 32];
        let len = buf.len().min(text.len());
        text[..len].copy_from_slice(&buf[..len]);
        Self {
            secs: Some(secs),
            text,
            len,
        }
    }

    fn text(&self) -> &[u8] {
        &self.text[..self.len]
    }
}

/// Appends `n` in decimal, zero-padded to `width` digits. (`write!` would go through
/// the formatting machinery, several times the cost for a line of a dozen numbers.)
fn push_padded(buf: &mut Vec<u8>, n: u64, width: usize) {
    let mut digits = [b'0'; 20];
    let i = fill_decimal(&mut digits, n);
    let start = i.min(digits.len().saturating_sub(width));
    buf.extend_from_slice(&digits[start..]);
}

/// The two decimal digits of each number below 100, in order.
const DIGIT_PAIRS: [u8; 200] = {
    let mut t = [0; 200];
    let mut i = 0;
    while i < 100 {
        t[2 * i] = b'0' + (i / 10) as u8;
        t[2 * i + 1] = b'0' + (i % 10) as u8;
        i += 1;
    }
    t
};

/// Writes `n` in decimal at the end of `digits`; returns where its first digit is.
/// Two digits at a time from a table: a line's dozen numbers, a digit at a time, were
/// a quarter of its cost.
pub(crate) fn fill_decimal(digits: &mut [u8; 20], mut n: u64) -> usize {
    let mut i = digits.len();
    while n >= 100 {
        let pair = (n % 100) as usize * 2;
        n /= 100;
        i -= 2;
        digits[i..i + 2].copy_from_slice(&DIGIT_PAIRS[pair..pair + 2]);
    }
    if n >= 10 {
        let pair = n as usize * 2;
        i -= 2;
        digits[i..i + 2].copy_from_slice(&DIGIT_PAIRS[pair..pair + 2]);
    } else {
        i -= 1;
        digits[i] = b'0' + n as u8;
    }
    i
}

/// A duration in milliseconds with nanosecond precision (`12.345678`). From the
/// seconds and the nanoseconds apart: the 128-bit nanosecond count's division and
/// remainder were two calls of a long-division routine for each duration of a line.
fn push_millis(buf: &mut Vec<u8>, d: Duration) {
    let sub = d.subsec_nanos();
    let millis = d
        .as_secs()
        .saturating_mul(1000)
        .saturating_add(u64::from(sub / 1_000_000));
    push_padded(buf, millis, 1);
    push_fraction(buf, sub % 1_000_000);
}

/// `.` and `n` (below a million) as six digits, written as one run: through
/// [`push_padded`] the point and the digits were two appends and a table loop.
fn push_fraction(buf: &mut Vec<u8>, n: u32) {
    let [a, b, c, d, e, f] = six_digits(n);
    buf.extend_from_slice(&[b'.', a, b, c, d, e, f]);
}

/// `n` (below a million) as six decimal digits, zero-padded.
fn six_digits(n: u32) -> [u8; 6] {
    let pair = |i: u32| {
        let i = (i % 100) as usize * 2;
        [DIGIT_PAIRS[i], DIGIT_PAIRS[i + 1]]
    };
    let [a, b] = pair(n / 10_000);
    let [c, d] = pair(n / 100);
    let [e, f] = pair(n);
    [a, b, c, d, e, f]
}

/// Days since 1970-01-01 to (year, month, day) in the proleptic Gregorian calendar
/// (Howard Hinnant's `civil_from_days`).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// Whether `s` holds a byte that [`push_quoted`] escapes: a control character, `"`,
/// `\` or DEL. Every string of every line goes through here, and most are a few
/// bytes long, where a byte loop costs ≈ 10 instructions a byte: eight bytes are
/// checked at once in a word (the last word overlapping the one before it; a string
/// shorter than a word padded with a byte that needs no escape).
pub(crate) fn needs_escape(s: &str) -> bool {
    any_word(s.as_bytes(), word_needs_escape)
}

/// Whether `s` holds a byte [`needs_escape`] flags or one outside ASCII: both checks
/// in one pass over the words.
pub(crate) fn needs_escape_or_non_ascii(s: &str) -> bool {
    const HIGH: u64 = (u64::MAX / 255) << 7;
    any_word(s.as_bytes(), |w| word_needs_escape(w) | (w & HIGH != 0))
}

/// Whether `test` holds for a word of `b`, eight bytes at a time.
#[inline(always)]
fn any_word(b: &[u8], test: impl Fn(u64) -> bool) -> bool {
    let n = b.len();
    if n < 8 {
        // The bytes gathered without a copy of unknown length (a call): from four
        // bytes on, the first four and the last four (overlapping); below, the first,
        // middle and last byte, which are all of them.
        let mut word = [b'a'; 8];
        if n >= 4 {
            word[..4].copy_from_slice(&b[..4]);
            word[4..].copy_from_slice(&b[n - 4..]);
        } else if n > 0 {
            word[0] = b[0];
            word[1] = b[n / 2];
            word[2] = b[n - 1];
        }
        return test(u64::from_le_bytes(word));
    }
    let mut hit = false;
    for chunk in b.chunks_exact(8) {
        hit |= test(word_at(chunk));
    }
    if !b.len().is_multiple_of(8) {
        hit |= test(word_at(&b[b.len() - 8..]));
    }
    hit
}

/// The eight bytes of `chunk` (exactly eight long) as a word.
fn word_at(chunk: &[u8]) -> u64 {
    let mut word = [0; 8];
    word.copy_from_slice(chunk);
    u64::from_le_bytes(word)
}

/// Whether a byte of `w` is below 0x20, `"`, `\` or 0x7f. Each test is the usual
/// "has a zero byte" trick, exact as a whole-word answer.
fn word_needs_escape(w: u64) -> bool {
    const ONES: u64 = u64::MAX / 255;
    const HIGH: u64 = ONES << 7;
    let zero = |x: u64| x.wrapping_sub(ONES) & !x & HIGH;
    let below_space = w.wrapping_sub(ONES * 0x20) & !w & HIGH;
    (below_space
        | zero(w ^ (ONES * u64::from(b'"')))
        | zero(w ^ (ONES * u64::from(b'\\')))
        | zero(w ^ (ONES * 0x7f)))
        != 0
}

/// Appends `s` as a JSON string (quotes included). Also the quoting of string values in
/// the text format, where it keeps a line one line whatever the value holds.
fn push_quoted(buf: &mut Vec<u8>, s: &str) {
    buf.push(b'"');
    if !needs_escape(s) {
        buf.extend_from_slice(s.as_bytes());
        buf.push(b'"');
        return;
    }
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let escaped: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0..=0x1f | 0x7f => b"",
            _ => continue,
        };
        buf.extend_from_slice(&bytes[start..i]);
        if escaped.is_empty() {
            let _ = write!(buf, "\\u{b:04x}");
        } else {
            buf.extend_from_slice(escaped);
        }
        start = i + 1;
    }
    buf.extend_from_slice(&bytes[start..]);
    buf.push(b'"');
}

/// One field value of a line.
enum Value<'a> {
    Str(&'a str),
    /// A string written unquoted in the text format (a `%`-formatted field).
    Display(&'a str),
    U64(u64),
    Bool(bool),
    Millis(Duration),
    TraceId(u128),
}

/// The request span's fields, in declaration order; absent ones are skipped.
fn span_fields(r: &ExchangeRecord, mut f: impl FnMut(&'static str, Value<'_>)) {
    if let Some(p) = r.path.as_deref() {
        f("path", Value::Str(p));
    }
    f("model", Value::Str(&r.request_model));
    if let Some(c) = r.client.as_deref() {
        f("client", Value::Str(c));
    }
    if let Some(v) = r.route.as_deref() {
        f("route", Value::Str(v));
    }
    if let Some(v) = r.backend.as_deref() {
        f("backend", Value::Str(v));
    }
    if let Some(s) = r.status {
        f("status", Value::U64(u64::from(s.as_u16())));
    }
    if let Some(n) = r.usage.input {
        f("input_tokens", Value::U64(n));
    }
    if let Some(n) = r.usage.output {
        f("output_tokens", Value::U64(n));
    }
    if let Some(t) = r.trace_id {
        f("trace_id", Value::TraceId(t));
    }
}

/// The event's fields, as [`TracingSink`] records them.
fn event_fields(r: &ExchangeRecord, attributes: &[Arc<str>], mut f: impl FnMut(&str, Value<'_>)) {
    if let Some(e) = r.endpoint {
        f("endpoint", Value::Str(e.operation_name()));
    }
    if let Some(c) = r.client.as_deref() {
        f("client", Value::Str(c));
    }
    if let Some(i) = r.identity.as_deref() {
        f("client_kind", Value::Str(i.kind.as_str()));
        if let Some(team) = i.team.as_deref() {
            f("team", Value::Str(team));
        }
    }
    if let Some(v) = r.route.as_deref() {
        f("route", Value::Str(v));
    }
    if let Some(v) = r.backend.as_deref() {
        f("backend", Value::Str(v));
    }
    if let Some(p) = r.provider {
        f("provider", Value::Str(p));
    }
    f("request_model", Value::Display(&r.request_model));
    if let Some(m) = r.response_model.as_deref() {
        f("response_model", Value::Str(m));
    }
    if let Some(s) = r.status {
        f("status", Value::U64(u64::from(s.as_u16())));
    }
    f("stream", Value::Bool(r.stream));
    f("attempts", Value::U64(u64::from(r.attempts)));
    if let Some(n) = r.usage.input {
        f("input_tokens", Value::U64(n));
    }
    if let Some(n) = r.usage.output {
        f("output_tokens", Value::U64(n));
    }
    if let Some(n) = r.usage.total_or_sum() {
        f("total_tokens", Value::U64(n));
    }
    if let Some(n) = r.usage.audio_ms {
        f("audio_ms", Value::U64(n));
    }
    if let Some(n) = r.usage.characters {
        f("input_characters", Value::U64(n));
    }
    if let Some(m) = r.spend_micros {
        f(
            "cost_usd",
            Value::Str(&aigw_core::pricing::format_micros(m)),
        );
    }
    if let Some(n) = r.usage.images {
        f("images", Value::U64(n));
    }
    f("token_source", Value::Str(r.usage_source.as_str()));
    if let Some(d) = r.latency {
        f("latency_ms", Value::Millis(d));
    }
    if let Some(d) = r.time_to_first_byte {
        f("ttfb_ms", Value::Millis(d));
    }
    if let Some(e) = r.error.as_deref() {
        f("error", Value::Str(e));
    }
    for (name, v) in &r.request_labels {
        if attributes.contains(name) {
            f(name, Value::Str(v));
        }
    }
}

fn write_value(buf: &mut Vec<u8>, v: &Value<'_>, json: bool) {
    match *v {
        Value::Str(s) => push_quoted(buf, s),
        // Client-supplied (the model name): quoted when it would break the line.
        Value::Display(s) if json || needs_escape(s) => push_quoted(buf, s),
        Value::Display(s) => buf.extend_from_slice(s.as_bytes()),
        Value::U64(n) => push_padded(buf, n, 1),
        Value::Bool(b) => buf.extend_from_slice(if b { b"true" } else { b"false" }),
        Value::Millis(d) => push_millis(buf, d),
        Value::TraceId(t) => {
            let _ = write!(buf, "\"{t:032x}\"");
        }
    }
}

/// `TIMESTAMP  INFO aigw.request{span fields}: aigw::access: request field=value …`,
/// the fields of [`span_fields`] and [`event_fields`] in their order (a test compares
/// the two). Written field by field with each `name=` a constant run of bytes: going
/// through the two visitors, each field cost a call of the value writer, a match on
/// the value's kind and a copy of its name of unknown length (a third of the line's cost).
/// The span's route and backend are copied, already quoted, into the event's fields.
fn write_text(
    buf: &mut Vec<u8>,
    checked: &mut Checked,
    r: &ExchangeRecord,
    attrs: &[Arc<str>],
    now: SystemTime,
) {
    write_timestamp(buf, now);
    buf.extend_from_slice(b"  INFO aigw.request{");
    if let Some(p) = r.path.as_deref() {
        text_str(buf, b"path=", p);
        buf.push(b' ');
    }
    // The request's model is written three times (and the response's is usually the
    // same text): checked for escapes once.
    let model_plain = !needs_escape(&r.request_model);
    text_checked(buf, b"model=", &r.request_model, model_plain);
    if let Some(c) = r.client.as_deref() {
        text_str(buf, b" client=", c);
    }
    let route = r.route.as_ref().map(|v| {
        let plain = plain_as_last(&mut checked.route, v);
        text_checked(buf, b" route=", v, plain)
    });
    let backend = r.backend.as_ref().map(|v| {
        let plain = plain_as_last(&mut checked.backend, v);
        text_checked(buf, b" backend=", v, plain)
    });
    // The numbers the event repeats are copied from here, as the route and backend are.
    let status = r
        .status
        .map(|s| text_u64(buf, b" status=", u64::from(s.as_u16())));
    let input = r.usage.input.map(|n| text_u64(buf, b" input_tokens=", n));
    let output = r.usage.output.map(|n| text_u64(buf, b" output_tokens=", n));
    if let Some(t) = r.trace_id {
        buf.extend_from_slice(b" trace_id=");
        write_value(buf, &Value::TraceId(t), false);
    }
    buf.extend_from_slice(b"}: aigw::access: request");
    if let Some(e) = r.endpoint {
        text_checked(buf, b" endpoint=", e.operation_name(), true);
    }
    if let Some(c) = r.client.as_deref() {
        text_str(buf, b" client=", c);
    }
    if let Some(i) = r.identity.as_deref() {
        text_str(buf, b" client_kind=", i.kind.as_str());
        if let Some(team) = i.team.as_deref() {
            text_str(buf, b" team=", team);
        }
    }
    if let Some(quoted) = route {
        buf.extend_from_slice(b" route=");
        buf.extend_from_within(quoted);
    }
    if let Some(quoted) = backend {
        buf.extend_from_slice(b" backend=");
        buf.extend_from_within(quoted);
    }
    if let Some(p) = r.provider {
        text_str(buf, b" provider=", p);
    }
    buf.extend_from_slice(b" request_model=");
    if model_plain {
        buf.extend_from_slice(r.request_model.as_bytes());
    } else {
        push_quoted(buf, &r.request_model);
    }
    match r.response_model.as_deref() {
        Some(m) if m == r.request_model => {
            text_checked(buf, b" response_model=", m, model_plain);
        }
        Some(m) => {
            text_str(buf, b" response_model=", m);
        }
        None => {}
    }
    if let Some(digits) = status {
        buf.extend_from_slice(b" status=");
        buf.extend_from_within(digits);
    }
    buf.extend_from_slice(if r.stream {
        b" stream=true"
    } else {
        b" stream=false"
    });
    text_u64(buf, b" attempts=", u64::from(r.attempts));
    write_text_counts(buf, r, input, output);
    if let Some(e) = r.error.as_deref() {
        text_str(buf, b" error=", e);
    }
    for (name, v) in &r.request_labels {
        if attrs.contains(name) {
            buf.push(b' ');
            buf.extend_from_slice(name.as_bytes());
            buf.push(b'=');
            push_quoted(buf, v);
        }
    }
    buf.push(b'\n');
}

/// The event's fields from `input_tokens` to `ttfb_ms`; the input and output counts
/// are where the span's fields wrote them.
fn write_text_counts(
    buf: &mut Vec<u8>,
    r: &ExchangeRecord,
    input: Option<std::ops::Range<usize>>,
    output: Option<std::ops::Range<usize>>,
) {
    let u = &r.usage;
    if let Some(digits) = input {
        buf.extend_from_slice(b" input_tokens=");
        buf.extend_from_within(digits);
    }
    if let Some(digits) = output {
        buf.extend_from_slice(b" output_tokens=");
        buf.extend_from_within(digits);
    }
    if let Some(n) = u.total_or_sum() {
        text_u64(buf, b" total_tokens=", n);
    }
    if let Some(n) = u.audio_ms {
        text_u64(buf, b" audio_ms=", n);
    }
    if let Some(n) = u.characters {
        text_u64(buf, b" input_characters=", n);
    }
    if let Some(m) = r.spend_micros {
        text_str(buf, b" cost_usd=", &aigw_core::pricing::format_micros(m));
    }
    if let Some(n) = u.images {
        text_u64(buf, b" images=", n);
    }
    text_checked(buf, b" token_source=", r.usage_source.as_str(), true);
    if let Some(d) = r.latency {
        buf.extend_from_slice(b" latency_ms=");
        push_millis(buf, d);
    }
    if let Some(d) = r.time_to_first_byte {
        buf.extend_from_slice(b" ttfb_ms=");
        push_millis(buf, d);
    }
}

/// `name` (with its separator and `=`) and `v` quoted; returns where the quoted value is.
#[inline(always)]
fn text_str(buf: &mut Vec<u8>, name: &'static [u8], v: &str) -> std::ops::Range<usize> {
    buf.extend_from_slice(name);
    let start = buf.len();
    push_quoted(buf, v);
    start..buf.len()
}

/// [`text_str`] for a value already known to need no escaping when `plain` (checked
/// once for all the places it is written, or one of a fixed set of names: the
/// endpoint's operation, the token source).
/// Returns where the quoted value is.
#[inline(always)]
fn text_checked(
    buf: &mut Vec<u8>,
    name: &'static [u8],
    v: &str,
    plain: bool,
) -> std::ops::Range<usize> {
    if !plain {
        return text_str(buf, name, v);
    }
    buf.extend_from_slice(name);
    let start = buf.len();
    buf.push(b'"');
    buf.extend_from_slice(v.as_bytes());
    buf.push(b'"');
    start..buf.len()
}

/// `name` (with its separator and `=`) and `n`; returns where its digits are.
#[inline(always)]
fn text_u64(buf: &mut Vec<u8>, name: &'static [u8], n: u64) -> std::ops::Range<usize> {
    buf.extend_from_slice(name);
    let start = buf.len();
    push_padded(buf, n, 1);
    start..buf.len()
}

/// The text line written through [`span_fields`] and [`event_fields`], as the JSON
/// line is: the reference [`write_text`] is compared with.
#[cfg(test)]
fn write_text_by_fields(
    buf: &mut Vec<u8>,
    r: &ExchangeRecord,
    attrs: &[Arc<str>],
    now: SystemTime,
) {
    write_timestamp(buf, now);
    buf.extend_from_slice(b"  INFO ");
    buf.extend_from_slice(SPAN_NAME.as_bytes());
    buf.push(b'{');
    let mut first = true;
    span_fields(r, |name, v| {
        if !first {
            buf.push(b' ');
        }
        first = false;
        buf.extend_from_slice(name.as_bytes());
        buf.push(b'=');
        write_value(buf, &v, false);
    });
    buf.extend_from_slice(b"}: aigw::access: request");
    event_fields(r, attrs, |name, v| {
        buf.push(b' ');
        buf.extend_from_slice(name.as_bytes());
        buf.push(b'=');
        write_value(buf, &v, false);
    });
    buf.push(b'\n');
}

fn write_json_span(buf: &mut Vec<u8>, r: &ExchangeRecord) {
    buf.push(b'{');
    span_fields(r, |name, v| {
        push_quoted(buf, name);
        buf.push(b':');
        write_value(buf, &v, true);
        buf.push(b',');
    });
    buf.extend_from_slice(b"\"name\":");
    push_quoted(buf, SPAN_NAME);
    buf.push(b'}');
}

/// `{"timestamp":…,"level":"INFO","fields":{"message":"request",…},"target":"aigw::access","span":{…},"spans":[{…}]}`
fn write_json(buf: &mut Vec<u8>, r: &ExchangeRecord, attrs: &[Arc<str>], now: SystemTime) {
    buf.extend_from_slice(b"{\"timestamp\":\"");
    write_timestamp(buf, now);
    buf.extend_from_slice(b"\",\"level\":\"INFO\",\"fields\":{\"message\":\"request\"");
    event_fields(r, attrs, |name, v| {
        buf.push(b',');
        push_quoted(buf, name);
        buf.push(b':');
        write_value(buf, &v, true);
    });
    buf.extend_from_slice(b"},\"target\":\"aigw::access\",\"span\":");
    write_json_span(buf, r);
    buf.extend_from_slice(b",\"spans\":[");
    write_json_span(buf, r);
    buf.extend_from_slice(b"]}\n");
}

impl<F> RecordSink for F
where
    F: Fn(&ExchangeRecord) + Send + Sync + 'static,
{
    fn record(&self, record: &ExchangeRecord) {
        self(record);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aigw_core::TokenUsage;
    use aigw_core::api::Endpoint;
    use http::StatusCode;

    /// A `Write` whose bytes the test can read back.
    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Shared {
        fn text(&self) -> String {
            String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
        }
    }

    fn info_subscriber() -> tracing::subscriber::DefaultGuard {
        tracing::subscriber::set_default(
            tracing_subscriber::fmt()
                .with_max_level(tracing::Level::INFO)
                .with_writer(std::io::sink)
                .finish(),
        )
    }

    fn record() -> ExchangeRecord {
        ExchangeRecord {
            endpoint: Some(Endpoint::ChatCompletions),
            route: Some("default/bench".into()),
            backend: Some("default/sim".into()),
            provider: Some("openai"),
            request_model: "gpt-4o \"mini\"\nx".into(),
            response_model: Some("gpt-4o-2024".into()),
            stream: true,
            status: Some(StatusCode::OK),
            usage: TokenUsage {
                input: Some(12),
                output: Some(34),
                ..Default::default()
            },
            attempts: 1,
            latency: Some(Duration::from_nanos(1_234_567)),
            time_to_first_byte: Some(Duration::from_micros(250)),
            client: Some("team-a".into()),
            path: Some("/v1/chat/completions".into()),
            trace_id: Some(0x4bf9_2f35_77b3_4da6_a3ce_929d_0e0e_4736),
            ..Default::default()
        }
    }

    #[test]
    fn json_lines_have_the_tracing_json_layout() {
        let _g = info_subscriber();
        let out = Shared::default();
        let log = AccessLog::new(out.clone(), AccessLogFormat::Json);
        log.record(&record());
        let mut failed = record();
        failed.status = Some(StatusCode::BAD_GATEWAY);
        failed.error = Some("upstream \\ unavailable".into());
        failed.usage = TokenUsage::default();
        log.record(&failed);
        log.flush();
        let text = out.text();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text}");
        let v: serde_json::Value = serde_json::from_str(lines[0]).unwrap();
        assert_eq!(v["level"], "INFO");
        assert_eq!(v["target"], "aigw::access");
        assert_eq!(v["fields"]["message"], "request");
        assert_eq!(v["fields"]["endpoint"], "chat");
        assert_eq!(v["fields"]["client"], "team-a");
        assert_eq!(v["fields"]["request_model"], "gpt-4o \"mini\"\nx");
        assert_eq!(v["fields"]["status"], 200);
        assert_eq!(v["fields"]["stream"], true);
        assert_eq!(v["fields"]["total_tokens"], 46);
        assert_eq!(v["fields"]["latency_ms"].as_f64(), Some(1.234567));
        assert_eq!(v["fields"]["ttfb_ms"].as_f64(), Some(0.25));
        assert_eq!(v["span"]["name"], "aigw.request");
        assert_eq!(v["span"]["path"], "/v1/chat/completions");
        assert_eq!(v["span"]["client"], "team-a");
        assert_eq!(v["span"]["status"], 200);
        assert_eq!(v["span"]["output_tokens"], 34);
        assert_eq!(v["span"]["trace_id"], "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(v["spans"][0], v["span"]);
        let ts = v["timestamp"].as_str().unwrap();
        assert_eq!(ts.len(), "2025-01-31T12:34:56.789012Z".len(), "{ts}");
        let e: serde_json::Value = serde_json::from_str(lines[1]).unwrap();
        assert_eq!(e["fields"]["error"], "upstream \\ unavailable");
        assert_eq!(e["fields"]["status"], 502);
        assert!(e["fields"].get("input_tokens").is_none(), "{e}");
    }

    #[test]
    fn text_lines_are_one_line_with_every_field() {
        let _g = info_subscriber();
        let out = Shared::default();
        let log = AccessLog::new(out.clone(), AccessLogFormat::Text);
        log.record(&record());
        log.flush();
        let text = out.text();
        assert_eq!(text.lines().count(), 1, "{text}");
        for needle in [
            "  INFO aigw.request{path=\"/v1/chat/completions\" model=\"gpt-4o \\\"mini\\\"\\nx\" client=\"team-a\"",
            "status=200 input_tokens=12 output_tokens=34 trace_id=\"4bf92f3577b34da6a3ce929d0e0e4736\"}: aigw::access: request ",
            "endpoint=\"chat\" client=\"team-a\" route=\"default/bench\" backend=\"default/sim\" provider=\"openai\"",
            "provider=\"openai\" request_model=\"gpt-4o \\\"mini\\\"\\nx\" response_model=\"gpt-4o-2024\" status=200 stream=true attempts=1 input_tokens=12 output_tokens=34 total_tokens=46",
            "latency_ms=1.234567 ttfb_ms=0.250000",
        ] {
            assert!(text.contains(needle), "missing {needle} in {text}");
        }
    }

    #[test]
    fn header_mapped_log_attributes_follow_the_fields() {
        let _g = info_subscriber();
        for format in [AccessLogFormat::Text, AccessLogFormat::Json] {
            let out = Shared::default();
            let log = AccessLog::new(out.clone(), format);
            assert!(log.set_request_attributes(vec![Arc::from("session.id")]));
            let mut r = record();
            r.request_labels = vec![
                (Arc::from("session.id"), "sess \"42\"".into()),
                // A metric-only mapping: not the access log's.
                (Arc::from("tenant"), "acme".into()),
            ];
            log.record(&r);
            log.flush();
            let text = out.text();
            match format {
                AccessLogFormat::Text => {
                    assert!(text.contains(r#" session.id="sess \"42\"""#), "{text}");
                }
                AccessLogFormat::Json => {
                    let v: serde_json::Value = serde_json::from_str(text.trim()).unwrap();
                    assert_eq!(v["fields"]["session.id"], "sess \"42\"", "{text}");
                }
            }
            assert!(!text.contains("acme"), "{text}");
        }
    }

    #[test]
    fn lines_wait_for_a_flush_and_follow_the_tracing_filter() {
        let out = Shared::default();
        let log = AccessLog::new(out.clone(), AccessLogFormat::Text);
        {
            let _g = tracing::subscriber::set_default(
                tracing_subscriber::fmt()
                    .with_max_level(tracing::Level::WARN)
                    .with_writer(std::io::sink)
                    .finish(),
            );
            log.record(&record());
            log.flush();
            assert_eq!(out.text(), "", "off below info");
        }
        let _g = info_subscriber();
        log.record(&record());
        assert_eq!(out.text(), "", "buffered until flushed");
        log.flush();
        assert_eq!(out.text().lines().count(), 1);
    }

    #[test]
    fn a_full_buffer_is_written_at_once() {
        let _g = info_subscriber();
        let out = Shared::default();
        let log = AccessLog::new(out.clone(), AccessLogFormat::Json);
        let mut n = 0;
        while out.text().is_empty() {
            log.record(&record());
            n += 1;
            assert!(n < 10_000);
        }
        assert!(out.text().len() >= FLUSH_AT, "{}", out.text().len());
        assert!(out.text().ends_with('\n'));
    }

    #[tokio::test(start_paused = true)]
    async fn the_flusher_writes_a_batch_after_the_delay() {
        let _g = info_subscriber();
        let out = Shared::default();
        let log = AccessLog::new(out.clone(), AccessLogFormat::Text);
        let flusher = log.spawn_flusher();
        tokio::task::yield_now().await;
        log.record(&record());
        log.record(&record());
        tokio::time::sleep(FLUSH_DELAY / 2).await;
        assert_eq!(out.text(), "");
        tokio::time::sleep(FLUSH_DELAY).await;
        assert_eq!(out.text().lines().count(), 2);
        log.record(&record());
        tokio::time::sleep(FLUSH_DELAY * 2).await;
        assert_eq!(out.text().lines().count(), 3);
        flusher.abort();
    }

    #[test]
    fn timestamps_are_rfc3339_utc_with_microseconds() {
        let mut buf = Vec::new();
        // 2024-02-29T12:34:56.789012Z
        let t = SystemTime::UNIX_EPOCH + Duration::new(1_709_210_096, 789_012_345);
        write_timestamp(&mut buf, t);
        assert_eq!(
            String::from_utf8(buf).unwrap(),
            "2024-02-29T12:34:56.789012Z"
        );
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        let mut buf = Vec::new();
        push_padded(&mut buf, u64::MAX, 1);
        push_padded(&mut buf, 7, 3);
        assert_eq!(buf, b"18446744073709551615007");
    }

    #[test]
    fn text_lines_are_the_fields_written_in_order() {
        // Records with each optional field present or not (chosen pseudo-randomly),
        // plain values and values that need escaping: the text writer against the
        // same line written through `span_fields` and `event_fields`.
        use aigw_core::identity::{ClientIdentity, IdentityKind};
        let strs = ["default/bench", "a \"b\"\n", "", "é/x\\y"];
        let mut x = 0x2545_F491_4F6C_DD1Du64;
        let now = SystemTime::UNIX_EPOCH + Duration::new(1_709_210_096, 789_012_345);
        let attrs = [Arc::<str>::from("session.id")];
        // Routes and backends shared between records, as the plan shares them: the
        // writer's memory of the last ones is kept across the records.
        let shared: Vec<Arc<str>> = strs.iter().map(|s| Arc::from(*s)).collect();
        let mut checked = Checked::default();
        for i in 0..4000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let on = |bit: u32| x & (1 << bit) != 0;
            let s = |bit: u32| strs[((x >> bit) & 3) as usize];
            let n = |bit: u32| on(bit).then_some((x >> bit) % 100_000);
            let arc = |bit: u32| shared[((x >> bit) & 3) as usize].clone();
            let mut identity = ClientIdentity::new("id", IdentityKind::VirtualKey);
            identity.team = on(40).then(|| Arc::from(s(41)));
            let r = ExchangeRecord {
                endpoint: on(0).then_some(Endpoint::ChatCompletions),
                route: on(1).then(|| if on(30) { arc(2) } else { s(2).into() }),
                backend: on(3).then(|| if on(31) { arc(4) } else { s(4).into() }),
                provider: on(5).then_some("openai"),
                request_model: s(6).into(),
                response_model: on(7).then(|| s(8).into()),
                stream: on(9),
                status: on(10).then_some(StatusCode::BAD_GATEWAY),
                usage: TokenUsage {
                    input: n(11),
                    output: n(12),
                    total: n(13),
                    audio_ms: n(14),
                    characters: n(15),
                    images: n(16),
                    ..Default::default()
                },
                attempts: (i % 3) as u32,
                latency: on(17).then(|| Duration::from_nanos(x >> 20)),
                time_to_first_byte: on(18).then(|| Duration::from_nanos(x >> 30)),
                error: on(19).then(|| s(20).into()),
                client: on(21).then(|| s(22).into()),
                identity: on(23).then(|| Arc::new(identity)),
                path: on(24).then(|| s(25).into()),
                trace_id: on(26).then_some(u128::from(x) << 3),
                spend_micros: n(27),
                request_labels: if on(28) {
                    vec![
                        (Arc::from("session.id"), s(29).into()),
                        (Arc::from("tenant"), "acme".into()),
                    ]
                } else {
                    Vec::new()
                },
                ..Default::default()
            };
            let (mut fast, mut reference) = (Vec::new(), Vec::new());
            write_text(&mut fast, &mut checked, &r, &attrs, now);
            write_text_by_fields(&mut reference, &r, &attrs, now);
            assert_eq!(
                String::from_utf8(fast).unwrap(),
                String::from_utf8(reference).unwrap()
            );
        }
    }

    #[test]
    fn numbers_are_written_as_format_writes_them() {
        // Every number below 100 000, each power of ten and its neighbours, and
        // pseudo-random numbers of every bit length, at widths 1 to 20.
        let mut ns: Vec<u64> = (0..100_000).collect();
        let mut p = 1u64;
        while let Some(next) = p.checked_mul(10) {
            ns.extend([p - 1, p, p + 1]);
            p = next;
        }
        ns.extend([p - 1, p, p + 1, u64::MAX, u64::MAX - 1]);
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        for bits in 1..=64 {
            for _ in 0..200 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                ns.push(x >> (64 - bits));
            }
        }
        for n in ns {
            for width in [1, 2, 4, 6, 20] {
                let mut buf = b"x".to_vec();
                push_padded(&mut buf, n, width);
                let want = format!("x{n:0width$}");
                assert_eq!(String::from_utf8(buf).unwrap(), want);
            }
        }
    }

    /// The byte loop [`needs_escape`] replaces.
    fn needs_escape_bytewise(s: &str) -> bool {
        s.bytes()
            .any(|b| b < 0x20 || b == b'"' || b == b'\\' || b == 0x7f)
    }

    #[test]
    fn the_word_escape_check_matches_the_byte_loop() {
        // Every ASCII byte at every position of strings up to 40 bytes, on ASCII and
        // multi-byte fillers, and the fillers alone.
        for filler in ["a", "é", "\u{1F600}", "~"] {
            for len in 0..=40 {
                let base: Vec<char> = filler.chars().cycle().take(len).collect();
                let plain: String = base.iter().collect();
                assert_eq!(
                    needs_escape(&plain),
                    needs_escape_bytewise(&plain),
                    "{plain:?}"
                );
                for at in 0..len {
                    for byte in 0u8..0x80 {
                        let mut chars = base.clone();
                        chars[at] = char::from(byte);
                        let s: String = chars.iter().collect();
                        assert_eq!(needs_escape(&s), needs_escape_bytewise(&s), "{s:?}");
                    }
                }
            }
        }
    }

    #[test]
    fn timestamps_of_consecutive_seconds_and_days() {
        // The per-second text is cached: a new second, day or year is formatted afresh.
        for (t, want) in [
            (1_709_210_096, "2024-02-29T12:34:56.000001Z"),
            (1_709_210_097, "2024-02-29T12:34:57.000001Z"),
            (1_709_251_199, "2024-02-29T23:59:59.000001Z"),
            (1_709_251_200, "2024-03-01T00:00:00.000001Z"),
            (1_709_251_200, "2024-03-01T00:00:00.000001Z"),
            (1_735_689_600, "2025-01-01T00:00:00.000001Z"),
            (0, "1970-01-01T00:00:00.000001Z"),
        ] {
            let mut buf = b"x".to_vec();
            write_timestamp(&mut buf, SystemTime::UNIX_EPOCH + Duration::new(t, 1_000));
            assert_eq!(String::from_utf8(buf).unwrap(), format!("x{want}"));
        }
    }

    #[test]
    fn six_digits_are_the_padded_number() {
        for n in (0..1_000_000)
            .step_by(7)
            .chain([0, 1, 99, 100, 9_999, 10_000, 999_999])
        {
            assert_eq!(six_digits(n), *format!("{n:06}").as_bytes(), "{n}");
        }
    }

    #[test]
    fn the_fixed_names_need_no_escaping() {
        // `write_text` writes them quoted without checking them.
        for e in Endpoint::ALL {
            assert!(!needs_escape(e.operation_name()), "{e:?}");
        }
        for s in [
            aigw_core::estimate::UsageSource::Reported,
            aigw_core::estimate::UsageSource::Estimated,
        ] {
            assert!(!needs_escape(s.as_str()), "{s:?}");
        }
    }

    #[test]
    fn millis_are_the_nanosecond_count_divided() {
        // The 128-bit division `push_millis` replaced, on durations of every size.
        let mut ds = vec![
            Duration::ZERO,
            Duration::MAX,
            Duration::new(u64::MAX / 1000, 0),
        ];
        ds.push(Duration::new(u64::MAX / 1000 + 1, 0));
        ds.push(Duration::new(u64::MAX / 1000, 999_999_999));
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        for bits in 0..=64 {
            for _ in 0..50 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let secs = x.checked_shr(64 - bits).unwrap_or(0);
                ds.push(Duration::new(secs, (x % 1_000_000_000) as u32));
            }
        }
        for d in ds {
            let nanos = d.as_nanos();
            let mut want = Vec::new();
            push_padded(
                &mut want,
                u64::try_from(nanos / 1_000_000).unwrap_or(u64::MAX),
                1,
            );
            want.push(b'.');
            push_padded(&mut want, (nanos % 1_000_000) as u64, 6);
            let mut got = Vec::new();
            push_millis(&mut got, d);
            assert_eq!(got, want, "{d:?}");
        }
    }

    #[test]
    fn control_characters_are_escaped() {
        let mut buf = Vec::new();
        push_quoted(&mut buf, "a\u{1b}[31mb\u{7f}\t");
        assert_eq!(
            String::from_utf8(buf.clone()).unwrap(),
            "\"a\\u001b[31mb\\u007f\\t\""
        );
        let v: String = serde_json::from_slice(&buf).unwrap();
        assert_eq!(v, "a\u{1b}[31mb\u{7f}\t");
    }
}
