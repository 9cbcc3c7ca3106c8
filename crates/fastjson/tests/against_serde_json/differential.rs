//! `fastjson::from_slice` against `serde_json::from_slice`: the same
//! inputs accepted, the same values and the same visitor calls, on generated
//! JSON, byte-level mutations of it, deep nesting, the upstream PSS fixtures
//! and the benchmark AdmissionReview payloads, for untyped and typed targets.

use std::collections::BTreeMap;
use std::fmt::{self, Debug};

use k8s_openapi::api::core::v1::{Pod, SecurityContext, Volume};
use proptest::prelude::*;
use serde::de::{Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

/// Every visitor call of a `deserialize_any` walk, in order.
#[derive(Debug, PartialEq)]
enum Rec {
    Unit,
    Bool(bool),
    U64(u64),
    I64(i64),
    /// Bits, so that -0.0 and 0.0 differ.
    F64(u64),
    BorrowedStr(String),
    Str(String),
    String(String),
    Seq(Vec<Rec>),
    Map(Vec<(Rec, Rec)>),
}

impl<'de> Deserialize<'de> for Rec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Rec;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("anything")
            }
            fn visit_unit<E>(self) -> Result<Rec, E> {
                Ok(Rec::Unit)
            }
            fn visit_bool<E>(self, v: bool) -> Result<Rec, E> {
                Ok(Rec::Bool(v))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Rec, E> {
                Ok(Rec::U64(v))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Rec, E> {
                Ok(Rec::I64(v))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Rec, E> {
                Ok(Rec::F64(v.to_bits()))
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Rec, E> {
                Ok(Rec::BorrowedStr(v.to_owned()))
            }
            fn visit_str<E>(self, v: &str) -> Result<Rec, E> {
                Ok(Rec::Str(v.to_owned()))
            }
            fn visit_string<E>(self, v: String) -> Result<Rec, E> {
                Ok(Rec::String(v))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<Rec, A::Error> {
                let mut out = Vec::new();
                while let Some(x) = a.next_element()? {
                    out.push(x);
                }
                Ok(Rec::Seq(out))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<Rec, A::Error> {
                let mut out = Vec::new();
                while let Some(k) = a.next_key()? {
                    out.push((k, a.next_value()?));
                }
                Ok(Rec::Map(out))
            }
        }
        d.deserialize_any(V)
    }
}

/// Decodes `input` as `T` with both decoders; they must agree on Ok/Err and
/// on the value. Returns whether it was accepted.
fn same<'a, T>(input: &'a [u8]) -> bool
where
    T: Deserialize<'a> + PartialEq + Debug,
{
    let theirs = serde_json::from_slice::<T>(input);
    let ours = fastjson::from_slice::<T>(input);
    match (&theirs, &ours) {
        (Ok(a), Ok(b)) => assert_eq!(
            a,
            b,
            "{}: values differ on {:?}",
            std::any::type_name::<T>(),
            String::from_utf8_lossy(input)
        ),
        (Err(_), Err(_)) => {}
        _ => panic!(
            "{}: serde_json {:?} vs json {:?} on {:?}",
            std::any::type_name::<T>(),
            theirs.as_ref().map(|_| ()),
            ours.as_ref().map(|_| ()),
            String::from_utf8_lossy(input)
        ),
    }
    theirs.is_ok()
}

/// `Value` must also print the same (the sign of zero, float digits).
fn same_value(input: &[u8]) -> bool {
    let theirs = serde_json::from_slice::<serde_json::Value>(input);
    let ours = fastjson::from_slice::<serde_json::Value>(input);
    if let (Ok(a), Ok(b)) = (&theirs, &ours) {
        assert_eq!(a.to_string(), b.to_string());
    }
    same::<serde_json::Value>(input)
}

/// Every untyped target.
fn same_untyped(input: &[u8]) -> bool {
    let ok = same_value(input);
    assert_eq!(same::<Rec>(input), ok);
    same::<IgnoredAny>(input);
    ok
}

/// A struct that reads some fields and skips the rest.
#[derive(Debug, PartialEq, serde::Deserialize)]
struct Partial {
    #[serde(default)]
    a: Option<u64>,
    #[serde(default)]
    b: Option<String>,
    #[serde(default)]
    c: Option<IgnoredAny>,
}

/// Typed hints: every kind of `deserialize_*` call.
#[derive(Debug, PartialEq, serde::Deserialize)]
enum Choice {
    Unit,
    New(i32),
    Tuple(u8, String),
    Struct { x: Option<f64> },
}

#[derive(Debug, PartialEq, serde::Deserialize)]
#[serde(untagged)]
enum Loose {
    N(f32),
    I(i128),
    U(u128),
    S(char),
    B(bool),
    C(Choice),
    V(Vec<i16>),
}

#[derive(Debug, PartialEq, serde::Deserialize)]
struct Hinted<'a> {
    #[serde(default)]
    u8s: Vec<u8>,
    #[serde(default)]
    i128: Option<i128>,
    #[serde(default)]
    u128: Option<u128>,
    #[serde(default)]
    ch: Option<char>,
    #[serde(default, borrow)]
    bytes: Option<&'a [u8]>,
    #[serde(default)]
    by_num: BTreeMap<i64, u8>,
    #[serde(default)]
    by_bool: BTreeMap<bool, ()>,
    #[serde(default)]
    by_u128: BTreeMap<u128, bool>,
    #[serde(default)]
    choices: Vec<Choice>,
    #[serde(default)]
    keyed: BTreeMap<String, Choice>,
    #[serde(default)]
    tuple: Option<(u16, i8, f64)>,
    #[serde(default)]
    loose: Vec<Loose>,
    #[serde(default)]
    unit: Option<()>,
}

/// Every typed target over generic text.
fn same_typed(input: &[u8]) {
    same::<Partial>(input);
    same::<Hinted>(input);
    same::<Vec<Choice>>(input);
    same::<BTreeMap<String, String>>(input);
    same::<BTreeMap<u8, IgnoredAny>>(input);
    same::<Vec<f64>>(input);
    same::<Vec<i64>>(input);
    same::<(String, bool)>(input);
    same::<&[u8]>(input);
    same::<Vec<&str>>(input);
}

// ----- generated JSON text -----

fn ws() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => Just(String::new()),
        1 => "[ \t\n\r]{1,3}",
    ]
}

fn number_text() -> impl Strategy<Value = String> {
    prop_oneof![
        "-?(0|[1-9][0-9]{0,3})",
        "-?[1-9][0-9]{17,22}",
        "-?(0|[1-9][0-9]{0,5})\\.[0-9]{1,22}",
        "-?(0|[1-9][0-9]{0,22})(\\.[0-9]{1,5})?[eE][+-]?[0-9]{1,4}",
        Just("-9223372036854775808".to_owned()),
        Just("-9223372036854775809".to_owned()),
        Just("18446744073709551615".to_owned()),
        Just("18446744073709551616".to_owned()),
        Just("-0".to_owned()),
        Just("-0.0".to_owned()),
        Just("1e400".to_owned()),
        Just("-1e-400".to_owned()),
        Just("0e999999999999".to_owned()),
        Just("1.7976931348623157e308".to_owned()),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| f.to_string()),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| format!("{f:e}")),
    ]
}

/// One piece of a string body, as JSON source.
fn string_piece() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => "[a-zA-Z0-9 ._/:=-]{1,12}",
        2 => any::<char>()
            .prop_filter("plain", |c| *c >= ' ' && *c != '"' && *c != '\\')
            .prop_map(String::from),
        1 => prop::sample::select(vec!["\\\"", "\\\\", "\\/", "\\b", "\\f", "\\n", "\\r", "\\t"])
            .prop_map(str::to_owned),
        1 => any::<char>().prop_map(|c| {
            let mut units = [0u16; 2];
            c.encode_utf16(&mut units)
                .iter()
                .map(|u| format!("\\u{u:04x}"))
                .collect::<String>()
        }),
        // Any code unit, lone surrogates included.
        1 => any::<u16>().prop_map(|u| format!("\\u{u:04X}")),
        1 => (0xD800u16..0xDC00, 0xDC00u16..0xE000)
            .prop_map(|(h, l)| format!("\\u{h:04x}\\u{l:04x}")),
        // Sloppy escapes: any printable after a backslash, short or bad hex.
        1 => "\\\\[ -~]",
        1 => "\\\\u[0-9a-fA-Gg\"]{0,4}",
    ]
}

fn string_text() -> impl Strategy<Value = String> {
    prop::collection::vec(string_piece(), 0..5).prop_map(|p| format!("\"{}\"", p.concat()))
}

/// Keys a typed target may look for, and random ones.
fn key_text() -> impl Strategy<Value = String> {
    prop_oneof![
        2 => prop::sample::select(vec![
            "a", "b", "c", "u8s", "i128", "u128", "ch", "bytes", "by_num", "by_bool", "by_u128",
            "choices", "keyed", "tuple", "loose", "unit", "Unit", "New", "Tuple", "Struct", "x",
            "12", "-3", "true", "false", "0", "340282366920938463463374607431768211455",
        ])
        .prop_map(|k| format!("\"{k}\"")),
        1 => string_text(),
    ]
}

fn json_text() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        3 => Just("null".to_owned()),
        3 => Just("true".to_owned()),
        3 => Just("false".to_owned()),
        10 => number_text(),
        10 => string_text(),
        // Sloppy numbers and literals, mostly invalid.
        2 => "-?[0-9]{0,3}(\\.[0-9]{0,2})?([eE][+-]?[0-9]{0,2})?",
        1 => "[ntf][a-z]{0,4}",
    ];
    leaf.prop_recursive(6, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec((ws(), inner.clone(), ws()), 0..6).prop_map(|items| {
                let body: Vec<String> = items
                    .into_iter()
                    .map(|(a, v, b)| format!("{a}{v}{b}"))
                    .collect();
                format!("[{}]", body.join(","))
            }),
            prop::collection::vec((ws(), key_text(), ws(), ws(), inner), 0..6).prop_map(|items| {
                let body: Vec<String> = items
                    .into_iter()
                    .map(|(a, k, b, c, v)| format!("{a}{k}{b}:{c}{v}"))
                    .collect();
                format!("{{{}}}", body.join(","))
            }),
        ]
    })
    .prop_flat_map(|v| (ws(), Just(v), ws()))
    .prop_map(|(a, v, b)| format!("{a}{v}{b}"))
}

fn value_tree() -> impl Strategy<Value = serde_json::Value> {
    use serde_json::Value;
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<u64>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        any::<String>().prop_map(Value::String),
        "[a-z\\\\\"\u{0}-\u{1f}\u{7f}é€😀]{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(6, 64, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(any::<String>(), inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

#[derive(Debug, Clone)]
enum Mutation {
    Insert(usize, u8),
    Delete(usize),
    Replace(usize, u8),
    Truncate(usize),
}

fn interesting_byte() -> impl Strategy<Value = u8> {
    prop_oneof![
        prop::sample::select(b"{}[],:\"\\u0123456789abcdefABCDEF-+.eEntrfl \t\n\r/x".to_vec()),
        Just(0u8),
        0x01u8..0x20,
        0x80u8..=0xFF,
        any::<u8>(),
    ]
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), interesting_byte()).prop_map(|(i, b)| Mutation::Insert(i, b)),
        any::<usize>().prop_map(Mutation::Delete),
        (any::<usize>(), interesting_byte()).prop_map(|(i, b)| Mutation::Replace(i, b)),
        any::<usize>().prop_map(Mutation::Truncate),
    ]
}

fn mutate(mut bytes: Vec<u8>, mutations: &[Mutation]) -> Vec<u8> {
    for m in mutations {
        let n = bytes.len();
        match *m {
            Mutation::Insert(i, b) => bytes.insert(i % (n + 1), b),
            Mutation::Delete(i) if n > 0 => {
                bytes.remove(i % n);
            }
            Mutation::Replace(i, b) if n > 0 => bytes[i % n] = b,
            Mutation::Truncate(i) => bytes.truncate(i % (n + 1)),
            _ => {}
        }
    }
    bytes
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn serialized_value_trees_decode_the_same(v in value_tree()) {
        let compact = serde_json::to_vec(&v).unwrap();
        let pretty = serde_json::to_vec_pretty(&v).unwrap();
        for text in [&compact, &pretty] {
            // Equal to serde_json's own parse (not to `v`: without
            // `float_roundtrip`, serde_json's float parsing is not exact).
            prop_assert!(same_untyped(text));
        }
    }

    #[test]
    fn generated_text_decodes_the_same(text in json_text()) {
        same_untyped(text.as_bytes());
        same_typed(text.as_bytes());
    }

    #[test]
    fn mutated_text_decodes_the_same(
        text in json_text(),
        mutations in prop::collection::vec(mutation(), 1..4),
    ) {
        let bytes = mutate(text.into_bytes(), &mutations);
        same_untyped(&bytes);
        same_typed(&bytes);
    }

    #[test]
    fn mutated_value_trees_decode_the_same(
        v in value_tree(),
        pretty in any::<bool>(),
        mutations in prop::collection::vec(mutation(), 1..4),
    ) {
        let text = if pretty { serde_json::to_vec_pretty(&v) } else { serde_json::to_vec(&v) };
        let bytes = mutate(text.unwrap(), &mutations);
        same_untyped(&bytes);
        same::<Partial>(&bytes);
    }

    #[test]
    fn deep_nesting_decodes_the_same(
        opens in prop::collection::vec(prop::sample::select(vec!["[", "{\"a\":", "[1,", "{\"b\":[", " "]), 100..140),
        inner in prop_oneof![Just("0"), Just("\"x\""), Just("[]"), Just("{}"), Just("")],
        close_all in any::<bool>(),
        drop_closes in 0usize..3,
    ) {
        let mut text = opens.concat();
        text.push_str(inner);
        let mut closes: Vec<&str> = opens
            .iter()
            .rev()
            .map(|o| match *o { "[" | "[1," => "]", "{\"a\":" => "}", "{\"b\":[" => "]}", _ => "" })
            .collect();
        if !close_all {
            closes.truncate(closes.len().saturating_sub(drop_closes));
        }
        text.push_str(&closes.concat());
        same_untyped(text.as_bytes());
        same::<Partial>(text.as_bytes());
        let wrapped = format!("{{\"c\":{text},\"a\":1}}");
        same::<Partial>(wrapped.as_bytes());
    }
}

// ----- Kubernetes objects -----

/// Every document of the upstream PSS fixtures, as JSON; `None` if absent.
fn pss_documents() -> Option<Vec<Vec<u8>>> {
    let root = crate::corpus::pss_dir()?;
    let mut files = Vec::new();
    let mut dirs = vec![root];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "yaml") {
                files.push(path);
            }
        }
    }
    files.sort();
    let mut docs = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        for doc in serde_yaml_ng::Deserializer::from_str(&text) {
            let value = serde_json::Value::deserialize(doc).unwrap();
            if !value.is_null() {
                docs.push(serde_json::to_vec(&value).unwrap());
                docs.push(serde_json::to_vec_pretty(&value).unwrap());
            }
        }
    }
    Some(docs)
}

/// The benchmark AdmissionReview bodies; `None` if absent.
fn payloads() -> Option<Vec<(String, Vec<u8>)>> {
    let dir = crate::corpus::payloads_dir()?;
    let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .map(|p| (p.display().to_string(), std::fs::read(&p).unwrap()))
        .collect();
    out.sort();
    Some(out)
}

#[derive(Debug, PartialEq, serde::Deserialize)]
struct Review {
    request: Request,
}

#[derive(Debug, PartialEq, serde::Deserialize)]
struct Request {
    object: Pod,
}

/// The admission shape: a few fields read, the rest skipped.
#[derive(Debug, PartialEq, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct LeanReview<'a> {
    #[serde(borrow)]
    api_version: &'a str,
    request: LeanRequest,
}

#[derive(Debug, PartialEq, serde::Deserialize)]
struct LeanRequest {
    uid: String,
    object: LeanPod,
}

#[derive(Debug, PartialEq, serde::Deserialize)]
struct LeanPod {
    metadata: IgnoredAny,
    spec: LeanSpec,
}

#[derive(Debug, PartialEq, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct LeanSpec {
    #[serde(default)]
    security_context: Option<k8s_openapi::api::core::v1::PodSecurityContext>,
    #[serde(default)]
    volumes: Vec<Volume>,
    containers: Vec<LeanContainer>,
}

#[derive(Debug, PartialEq, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct LeanContainer {
    name: String,
    #[serde(default)]
    security_context: Option<SecurityContext>,
}

/// The pod's volumes and security contexts, as JSON texts.
fn parts(pod: &serde_json::Value) -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
    let spec = &pod["spec"];
    let volumes = spec["volumes"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|v| serde_json::to_vec(v).unwrap())
        .collect();
    let contexts = ["containers", "initContainers", "ephemeralContainers"]
        .iter()
        .flat_map(|k| spec[*k].as_array().into_iter().flatten())
        .filter_map(|c| c.get("securityContext"))
        .map(|s| serde_json::to_vec(s).unwrap())
        .collect();
    (volumes, contexts)
}

#[test]
fn pss_fixtures_decode_the_same() {
    let Some(docs) = pss_documents() else { return };
    assert!(
        docs.len() > 100,
        "expected the PSS corpus, got {} documents",
        docs.len()
    );
    let mut pods = 0;
    for doc in &docs {
        assert!(same_untyped(doc));
        if same::<Pod>(doc) {
            pods += 1;
        }
        same::<Partial>(doc);
        let value: serde_json::Value = serde_json::from_slice(doc).unwrap();
        let (volumes, contexts) = parts(&value);
        for v in &volumes {
            assert!(same::<Volume>(v));
        }
        for s in &contexts {
            assert!(same::<SecurityContext>(s));
        }
        let review = format!(
            "{{\"apiVersion\":\"admission.k8s.io/v1\",\"request\":{{\"uid\":\"u\",\"object\":{}}}}}",
            String::from_utf8_lossy(doc)
        );
        same::<Review>(review.as_bytes());
        same::<LeanReview>(review.as_bytes());
    }
    assert!(pods > 100);
}

#[test]
fn payloads_decode_the_same() {
    let Some(payloads) = payloads() else { return };
    assert!(!payloads.is_empty());
    for (name, body) in &payloads {
        assert!(same_untyped(body), "{name}");
        assert!(same::<Review>(body), "{name}");
        assert!(same::<LeanReview>(body), "{name}");
        let value: serde_json::Value = serde_json::from_slice(body).unwrap();
        let pod = serde_json::to_vec(&value["request"]["object"]).unwrap();
        assert!(same::<Pod>(&pod), "{name}");
        let (volumes, contexts) = parts(&value["request"]["object"]);
        for v in &volumes {
            assert!(same::<Volume>(v), "{name}");
        }
        for s in &contexts {
            assert!(same::<SecurityContext>(s), "{name}");
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 500, ..ProptestConfig::default() })]

    /// Byte-level damage to a real review: typed decoding (read and skipped
    /// parts) fails exactly when serde_json's does.
    #[test]
    fn mutated_payloads_decode_the_same(
        which in any::<prop::sample::Index>(),
        mutations in prop::collection::vec(mutation(), 1..4),
    ) {
        let Some(payloads) = payloads() else { return Ok(()) };
        let body = &payloads[which.index(payloads.len())].1;
        let bytes = mutate(body.clone(), &mutations);
        same::<Review>(&bytes);
        same::<LeanReview>(&bytes);
        same::<IgnoredAny>(&bytes);
        same_value(&bytes);
    }
}
