//! Edge cases of `fastjson::from_slice`, each checked against
//! serde_json and against the expected outcome.

use std::fmt;

use serde::Deserialize;
use serde::de::{self, IgnoredAny, Visitor};
use serde_json::Value;

/// Asserts both decoders accept `input` as `T` (or both reject it, per
/// `accept`) and agree on the value.
fn check<'a, T>(input: &'a str, accept: bool)
where
    T: Deserialize<'a> + PartialEq + fmt::Debug,
{
    check_bytes::<T>(input.as_bytes(), accept);
}

fn check_bytes<'a, T>(input: &'a [u8], accept: bool)
where
    T: Deserialize<'a> + PartialEq + fmt::Debug,
{
    let theirs = serde_json::from_slice::<T>(input);
    let ours = fastjson::from_slice::<T>(input);
    assert_eq!(
        theirs.is_ok(),
        accept,
        "serde_json on {input:?}: {theirs:?}"
    );
    assert_eq!(ours.is_ok(), accept, "json on {input:?}: {ours:?}");
    if let (Ok(a), Ok(b)) = (theirs, ours) {
        assert_eq!(a, b, "{input:?}");
    }
}

/// Bytes through `deserialize_bytes`.
#[derive(Debug, PartialEq)]
struct Bytes(Vec<u8>);

impl<'de> Deserialize<'de> for Bytes {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Bytes;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("bytes")
            }
            fn visit_bytes<E>(self, v: &[u8]) -> Result<Bytes, E> {
                Ok(Bytes(v.to_vec()))
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut a: A) -> Result<Bytes, A::Error> {
                let mut out = Vec::new();
                while let Some(b) = a.next_element()? {
                    out.push(b);
                }
                Ok(Bytes(out))
            }
        }
        d.deserialize_bytes(V)
    }
}

/// Which visitor method a string reached.
#[derive(Debug, PartialEq)]
enum StrCall {
    Borrowed(String),
    Copied(String),
}

impl<'de> Deserialize<'de> for StrCall {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = StrCall;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<StrCall, E> {
                Ok(StrCall::Borrowed(v.into()))
            }
            fn visit_str<E>(self, v: &str) -> Result<StrCall, E> {
                Ok(StrCall::Copied(v.into()))
            }
        }
        d.deserialize_any(V)
    }
}

#[derive(Debug, PartialEq, Deserialize)]
struct Known {
    known: u8,
}

#[test]
fn lone_surrogates_fail_as_text_but_pass_when_skipped_or_bytes() {
    for s in [
        r#""\ud800""#,
        r#""\udc00""#,
        r#""\ud800\u0041""#,
        r#""\ud800x""#,
    ] {
        check::<String>(s, false);
        check::<Value>(s, false);
        check::<IgnoredAny>(s, true);
        check::<Known>(&format!(r#"{{"other":{s},"known":1}}"#), true);
        check::<Bytes>(s, true);
    }
    check::<String>(r#""\ud83d\ude00""#, true);
    assert_eq!(
        fastjson::from_slice::<String>(br#""\ud83d\ude00""#).unwrap(),
        "😀"
    );
    // Lone surrogates as bytes are WTF-8, as in serde_json.
    assert_eq!(
        fastjson::from_slice::<Bytes>(br#""\ud800\n""#).unwrap(),
        Bytes(vec![0xED, 0xA0, 0x80, b'\n'])
    );
    // A key is always decoded, even for an unknown field.
    check::<Known>(r#"{"\ud800":1,"known":1}"#, false);
}

#[test]
fn numbers_follow_serde_json() {
    check::<Value>("-0", true);
    assert_eq!(
        fastjson::from_slice::<Value>(b"-0").unwrap().to_string(),
        "-0.0"
    );
    assert_eq!(
        fastjson::from_slice::<Value>(b"0").unwrap(),
        Value::from(0u64)
    );
    check::<Value>("18446744073709551615", true);
    check::<Value>("18446744073709551616", true);
    check::<Value>("-9223372036854775808", true);
    check::<Value>("-9223372036854775809", true);
    assert!(
        fastjson::from_slice::<Value>(b"-9223372036854775809")
            .unwrap()
            .is_f64()
    );
    check::<Value>("1.5e3", true);
    check::<Value>("2.2250738585072014e-308", true);
    check::<Value>("1e400", false);
    check::<Value>("-1e400", false);
    check::<Value>("1e-400", true);
    check::<Value>("0e99999999999999", true);
    check::<Value>("1e99999999999999", false);
    check::<IgnoredAny>("1e400", true);
    check::<Known>(r#"{"x":1e400,"known":2}"#, true);
    for bad in [
        "0123", "-", "01", "1.", ".5", "1e", "1e+", "+1", "- 1", "1.e5", "00", "-01",
    ] {
        check::<Value>(bad, false);
        check::<IgnoredAny>(bad, false);
    }
    check::<u8>("255", true);
    check::<u8>("256", false);
    check::<i8>("-128", true);
    check::<u64>("1.0", false);
    check::<f32>("1.5", true);
    check::<i128>("-170141183460469231731687303715884105728", true);
    check::<u128>("340282366920938463463374607431768211455", true);
    check::<u128>("340282366920938463463374607431768211456", false);
    check::<u128>("-1", false);
}

#[test]
fn structure_rules_follow_serde_json() {
    for bad in [
        "[1,]",
        r#"{"a":1,}"#,
        "[1 2]",
        r#"{"a" 1}"#,
        "{1:2}",
        "[",
        "{",
        "",
        " ",
        "nul",
        "truex",
        "1 2",
        "[]]",
        "\u{c}1",
        // The skipper's compact-JSON shortcuts, cut short or misused.
        r#"{"a":{}"#,
        r#"{"a":{""#,
        r#"{"a":{"b"}}"#,
        r#"{"a":{},}"#,
        r#"{"a":{}}}"#,
        r#"{"a":{"b":{}},"#,
        r#"{"a":"b","c":}"#,
        r#"{"a":{}"b":{}}"#,
    ] {
        check::<Value>(bad, false);
        check::<IgnoredAny>(bad, false);
    }
    for good in [
        " \t\r\n[ 1 , { \"a\" : null } ] \n",
        "[]",
        "{}",
        "\"\"",
        "true",
        r#"{"a":{},"b":{"c":{"":{}},"d":"e"},"f":{ },"g":{"h":[{}]}}"#,
    ] {
        check::<Value>(good, true);
        check::<IgnoredAny>(good, true);
    }
}

#[test]
fn strings_follow_serde_json() {
    for bad in [
        "\"a\u{0}b\"",
        "\"a\nb\"",
        "\"\u{1f}\"",
        r#""\x""#,
        r#""\u12G4""#,
        r#""\u12"#,
        "\"abc",
    ] {
        check::<String>(bad, false);
        check::<IgnoredAny>(bad, false);
    }
    check::<String>(r#""a\u0000b""#, true);
    check::<String>(r#""\"\\\/\b\f\n\r\t""#, true);
    // Invalid UTF-8: rejected when decoded, accepted when skipped.
    let bad_utf8 = b"{\"other\":\"\xff\xfe\",\"known\":1}";
    check_bytes::<Known>(bad_utf8, true);
    check_bytes::<IgnoredAny>(bad_utf8, true);
    check_bytes::<Value>(bad_utf8, false);
    check_bytes::<String>(b"\"\xc3\"", false);
    check_bytes::<Known>(b"{\"\xff\":1,\"known\":1}", false);
    // Raw control characters pass as bytes, as in serde_json.
    check::<Bytes>("\"a\u{1}b\"", true);
}

#[test]
fn strings_borrow_unless_escaped() {
    assert_eq!(
        fastjson::from_slice::<StrCall>(br#""plain""#).unwrap(),
        StrCall::Borrowed("plain".into())
    );
    assert_eq!(
        fastjson::from_slice::<StrCall>(br#""a\nb""#).unwrap(),
        StrCall::Copied("a\nb".into())
    );
}

#[test]
fn recursion_limit_is_serde_jsons_but_skipping_is_unbounded() {
    let nest = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
    check::<Value>(&nest(127), true);
    check::<Value>(&nest(128), false);
    check::<IgnoredAny>(&nest(128), true);
    check::<IgnoredAny>(&nest(100_000), true);
    check::<Known>(&format!(r#"{{"deep":{},"known":3}}"#, nest(5_000)), true);
    check::<IgnoredAny>(
        &format!("{}1{}", "[".repeat(5_000), "]".repeat(4_999)),
        false,
    );
}

#[test]
fn enums_and_options_follow_serde_json() {
    #[derive(Debug, PartialEq, Deserialize)]
    enum E {
        A,
        B(u8),
        C { x: bool },
        D(u8, u8),
    }
    check::<E>(r#""A""#, true);
    check::<E>(r#"{"B":3}"#, true);
    check::<E>(r#"{"C":{"x":true}}"#, true);
    check::<E>(r#"{"C":[false]}"#, true);
    check::<E>(r#"{"D":[1,2]}"#, true);
    check::<E>(r#"{"A":null}"#, true);
    check::<E>(r#""B""#, false);
    check::<E>(r#"{"B":3,"A":null}"#, false);
    check::<Option<u8>>("null", true);
    check::<Option<u8>>("7", true);
    check::<Option<u8>>("nul", false);
    check::<char>(r#""é""#, true);
    check::<char>(r#""ab""#, false);
}

#[test]
fn errors_carry_an_offset() {
    let err = fastjson::from_slice::<Value>(b"[1, 2 x]").unwrap_err();
    assert_eq!(err.offset(), 6);
    assert!(err.to_string().contains("at byte 6"), "{err}");
    let err = fastjson::from_slice::<Known>(br#"{"known":"x"}"#).unwrap_err();
    assert!(err.message().contains("invalid type"), "{err}");
}
