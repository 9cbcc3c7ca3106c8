//! `fastjson` against serde_json on any bytes: the decoder accepts exactly
//! what serde_json accepts, with the same value (untyped, skipped, and a
//! typed struct that reads some fields and skips the rest); the writer
//! escapes any string byte for byte as serde_json does.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::Value;

#[derive(Debug, PartialEq, Deserialize)]
struct Partial {
    #[serde(default)]
    a: Option<u64>,
    #[serde(default)]
    b: Option<String>,
    #[serde(default)]
    c: Option<Vec<f64>>,
    #[serde(default)]
    d: Option<IgnoredAny>,
}

/// Both decoders agree on acceptance and on the value.
fn same<'a, T: Deserialize<'a> + PartialEq + std::fmt::Debug>(data: &'a [u8]) {
    let theirs = serde_json::from_slice::<T>(data).ok();
    let ours = fastjson::from_slice::<T>(data).ok();
    assert_eq!(theirs, ours, "{:?}", String::from_utf8_lossy(data));
}

fuzz_target!(|data: &[u8]| {
    same::<Value>(data);
    same::<Partial>(data);
    assert_eq!(
        serde_json::from_slice::<IgnoredAny>(data).is_ok(),
        fastjson::from_slice::<IgnoredAny>(data).is_ok()
    );
    if let Ok(text) = std::str::from_utf8(data) {
        let mut out = Vec::new();
        fastjson::write_str(&mut out, text);
        assert_eq!(out, serde_json::to_vec(text).unwrap());
    }
});
