//! The log line format, text or JSON, for `tracing_subscriber::fmt`.
//!
//! The server logs a line per review, so the line is written directly here
//! instead of through tracing-subscriber's generic formatters (which cost
//! about as much as decoding half the review). Text lines keep
//! tracing-subscriber's layout (`TIMESTAMP LEVEL TARGET: MESSAGE k=v …`) in
//! logfmt style: a value is written bare when it is a plain token and quoted
//! and escaped otherwise, so that no field can break a line or fake another
//! field. JSON lines hold the same data as tracing-subscriber's flattened
//! JSON: `timestamp`, `level`, the fields (`message` first), `target`.

use std::fmt::{self, Write as _};
use std::time::{SystemTime, UNIX_EPOCH};

use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// One log line per event: text (logfmt fields) or JSON.
#[derive(Debug, Clone, Copy)]
pub struct LogLine {
    /// JSON lines instead of text.
    pub json: bool,
}

impl<S, N> FormatEvent<S, N> for LogLine
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let meta = event.metadata();
        let mut line = String::with_capacity(256);
        let stamp = timestamp(SystemTime::now());
        let stamp = std::str::from_utf8(&stamp).expect("ASCII digits");
        if self.json {
            line.push_str("{\"timestamp\":\"");
            line.push_str(stamp);
            line.push_str("\",\"level\":\"");
            line.push_str(meta.level().as_str());
            line.push('"');
            event.record(&mut JsonFields { line: &mut line });
            line.push_str(",\"target\":");
            push_json_str(&mut line, meta.target());
            line.push_str("}\n");
        } else {
            line.push_str(stamp);
            line.push(' ');
            let level = meta.level().as_str();
            line.push_str(&"     "[level.len()..]);
            line.push_str(level);
            line.push(' ');
            line.push_str(meta.target());
            line.push(':');
            event.record(&mut TextFields { line: &mut line });
            line.push('\n');
        }
        writer.write_str(&line)
    }
}

/// `time` as RFC 3339 UTC with microseconds: `2026-11-24T19:03:51.843342Z`.
fn timestamp(time: SystemTime) -> [u8; 27] {
    let since = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let (year, month, day) = civil_date((secs / 86_400) as i64);
    let s = secs % 86_400;
    let mut out = *b"0000-00-00T00:00:00.000000Z";
    let mut put = |at: usize, width: usize, mut n: u64| {
        for i in (at..at + width).rev() {
            out[i] = b'0' + (n % 10) as u8;
            n /= 10;
        }
    };
    put(0, 4, year as u64);
    put(5, 2, month);
    put(8, 2, day);
    put(11, 2, s / 3600);
    put(14, 2, s / 60 % 60);
    put(17, 2, s % 60);
    put(20, 6, u64::from(since.subsec_micros()));
    out
}

/// The proleptic Gregorian (year, month, day) of a day count from
/// 1970-01-01 (Howard Hinnant's `civil_from_days`).
fn civil_date(days: i64) -> (i64, u64, u64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u64;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u64;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Text fields: ` message k=v k2=v2`.
struct TextFields<'a> {
    line: &'a mut String,
}

impl TextFields<'_> {
    fn value(&mut self, field: &Field, value: &str) {
        self.line.push(' ');
        if field.name() == "message" {
            // The message is the event's own text, written as it is, but on
            // one line.
            push_one_line(self.line, value);
            return;
        }
        self.line.push_str(field.name());
        self.line.push('=');
        if is_plain(value) {
            self.line.push_str(value);
        } else {
            let _ = write!(self.line, "{value:?}");
        }
    }
}

impl Visit for TextFields<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.value(field, value);
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.value(field, if value { "true" } else { "false" });
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.value(field, itoa::Buffer::new().format(value));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.value(field, itoa::Buffer::new().format(value));
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.value(field, &format!("{value:?}"));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        // Written in place; taken out again only if it must be escaped.
        self.line.push(' ');
        let message = field.name() == "message";
        if !message {
            self.line.push_str(field.name());
            self.line.push('=');
        }
        let start = self.line.len();
        let _ = write!(self.line, "{value:?}");
        let written = &self.line[start..];
        if message && !written.contains(char::is_control) || !message && is_plain(written) {
            return;
        }
        let text = self.line.split_off(start);
        if message {
            push_one_line(self.line, &text);
        } else {
            let _ = write!(self.line, "{text:?}");
        }
    }
}

/// A bare logfmt value: non-empty, and no whitespace, quote, backslash,
/// `=` or control character.
fn is_plain(value: &str) -> bool {
    !value.is_empty()
        && value
            .bytes()
            .all(|b| b > b' ' && b != b'"' && b != b'\\' && b != b'=' && b != 0x7f)
}

/// `text` with line breaks and other control characters escaped.
fn push_one_line(line: &mut String, text: &str) {
    for c in text.chars() {
        if c.is_control() {
            let _ = write!(line, "{}", c.escape_default());
        } else {
            line.push(c);
        }
    }
}

/// JSON fields: `,"message":"…","k":v`.
struct JsonFields<'a> {
    line: &'a mut String,
}

impl JsonFields<'_> {
    fn key(&mut self, field: &Field) {
        self.line.push(',');
        push_json_str(self.line, field.name());
        self.line.push(':');
    }
}

impl Visit for JsonFields<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.key(field);
        push_json_str(self.line, value);
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.key(field);
        self.line.push_str(if value { "true" } else { "false" });
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.key(field);
        self.line.push_str(itoa::Buffer::new().format(value));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.key(field);
        self.line.push_str(itoa::Buffer::new().format(value));
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        match serde_json::Number::from_f64(value) {
            Some(n) => {
                self.key(field);
                self.line.push_str(&n.to_string());
            }
            // NaN and infinities are not JSON numbers.
            None => self.record_str(field, &value.to_string()),
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        // Written in place; taken out again only if it must be escaped.
        self.key(field);
        self.line.push('"');
        let start = self.line.len();
        let _ = write!(self.line, "{value:?}");
        if fastjson::needs_escape(&self.line[start..]) {
            let text = self.line.split_off(start - 1);
            push_json_str(self.line, &text[1..]);
        } else {
            self.line.push('"');
        }
    }
}

fn push_json_str(line: &mut String, value: &str) {
    fastjson::write_str_to_string(line, value);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};
    use std::time::Duration;
    use tracing_subscriber::fmt::MakeWriter;

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Captured {
        type Writer = Captured;
        fn make_writer(&'a self) -> Captured {
            self.clone()
        }
    }

    fn logged(json: bool, emit: impl FnOnce()) -> String {
        let out = Captured::default();
        let subscriber = tracing_subscriber::fmt()
            .event_format(LogLine { json })
            .with_writer(out.clone())
            .finish();
        tracing::subscriber::with_default(subscriber, emit);
        String::from_utf8(out.0.lock().unwrap().clone()).unwrap()
    }

    fn review_event() {
        tracing::info!(
            webhook = "mutate",
            uid = %"705ab4f5",
            name = %"evil\nname=\"x\" allowed=false",
            allowed = true,
            patch_ops = 16u64,
            delta = -3i64,
            delay_s = 5.0f64,
            "review"
        );
    }

    #[test]
    fn text_lines_keep_fields_on_one_line_and_unforgeable() {
        let line = logged(false, review_event);
        let (stamp, rest) = line.split_once(' ').unwrap();
        assert_eq!(stamp.len(), 27, "{line}");
        assert_eq!(
            rest,
            " INFO floe_guard::logs::format::tests: review webhook=mutate uid=705ab4f5 \
             name=\"evil\\nname=\\\"x\\\" allowed=false\" allowed=true patch_ops=16 delta=-3 delay_s=5.0\n"
        );
    }

    #[test]
    fn json_lines_hold_typed_fields() {
        let line = logged(true, review_event);
        assert_eq!(line.matches('\n').count(), 1);
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["level"], "INFO");
        assert_eq!(v["message"], "review");
        assert_eq!(v["webhook"], "mutate");
        assert_eq!(v["name"], "evil\nname=\"x\" allowed=false");
        assert_eq!(v["allowed"], true);
        assert_eq!(v["patch_ops"], 16);
        assert_eq!(v["delta"], -3);
        assert_eq!(v["delay_s"], 5.0);
        assert_eq!(v["target"], "floe_guard::logs::format::tests");
        assert!(v["timestamp"].as_str().unwrap().ends_with('Z'));
    }

    #[test]
    fn messages_are_one_line() {
        let line = logged(false, || tracing::warn!("two\nlines"));
        assert!(line.ends_with(" WARN floe_guard::logs::format::tests: two\\nlines\n"));
    }

    #[test]
    fn timestamps_are_rfc3339_utc_micros() {
        let at = |s: u64, us: u64| {
            let t = timestamp(UNIX_EPOCH + Duration::from_secs(s) + Duration::from_micros(us));
            String::from_utf8(t.to_vec()).unwrap()
        };
        assert_eq!(at(0, 0), "1970-01-01T00:00:00.000000Z");
        assert_eq!(at(951_782_400, 1), "2000-02-29T00:00:00.000001Z");
        assert_eq!(at(1_795_547_031, 843_342), "2026-11-24T19:03:51.843342Z");
        assert_eq!(at(4_107_542_399, 999_999), "2100-02-28T23:59:59.999999Z");
    }
}
