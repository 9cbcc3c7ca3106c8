//! Writing JSON strings on the admission hot path, byte for byte as
//! `serde_json::to_writer` writes them, scanned 16 bytes at a time for the
//! few characters that need escaping instead of byte by byte.

use crate::scan::find_special;

/// Appends `s` as a JSON string, escaped exactly as serde_json escapes it.
pub fn write_str(out: &mut Vec<u8>, s: &str) {
    out.reserve(s.len() + 2);
    out.push(b'"');
    write_str_content(out, s);
    out.push(b'"');
}

/// Appends the content of `s` as a JSON string, escaped as serde_json
/// escapes it, without the quotes.
pub fn write_str_content(out: &mut Vec<u8>, s: &str) {
    let bytes = s.as_bytes();
    let mut start = 0;
    loop {
        let i = find_special::<true>(bytes, start);
        out.extend_from_slice(&bytes[start..i]);
        let Some(&b) = bytes.get(i) else { break };
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\x08' => out.extend_from_slice(b"\\b"),
            b'\t' => out.extend_from_slice(b"\\t"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\x0c' => out.extend_from_slice(b"\\f"),
            b'\r' => out.extend_from_slice(b"\\r"),
            _ => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.extend_from_slice(b"\\u00");
                out.push(HEX[(b >> 4) as usize]);
                out.push(HEX[(b & 0xf) as usize]);
            }
        }
        start = i + 1;
    }
}

/// Appends `s` as a JSON string to a `String`, escaped as serde_json
/// escapes it.
pub fn write_str_to_string(out: &mut String, s: &str) {
    // SAFETY: `write_str` appends `s` (valid UTF-8) with some ASCII
    // characters replaced by ASCII escapes, which is valid UTF-8.
    write_str(unsafe { out.as_mut_vec() }, s);
}

/// Whether `s` has a character that JSON escapes (`"`, `\`, or a control
/// character below U+0020).
pub fn needs_escape(s: &str) -> bool {
    find_special::<true>(s.as_bytes(), 0) < s.len()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn written(s: &str) -> String {
        let mut out = Vec::new();
        write_str(&mut out, s);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn escapes_like_serde_json() {
        let all_ascii: String = (0u8..128).map(char::from).collect();
        for s in [
            "",
            "plain",
            "quote \" and backslash \\",
            "tabs\tnew\nlines\r\x08\x0c\x00\x1f\x7f",
            "a string longer than sixteen bytes with a \" late and é ünïcode ✓",
            &all_ascii,
        ] {
            assert_eq!(written(s), serde_json::to_string(s).unwrap(), "{s:?}");
            let mut line = String::from("x=");
            write_str_to_string(&mut line, s);
            assert_eq!(line, format!("x={}", serde_json::to_string(s).unwrap()));
            assert_eq!(
                needs_escape(s),
                serde_json::to_string(s).unwrap() != format!("\"{s}\"")
            );
        }
    }

    proptest! {
        #[test]
        fn any_string_is_written_as_serde_json_writes_it(s in any::<String>()) {
            let theirs = serde_json::to_string(&s).unwrap();
            prop_assert_eq!(needs_escape(&s), theirs != format!("\"{s}\""));
            prop_assert_eq!(written(&s), theirs);
        }
    }
}
