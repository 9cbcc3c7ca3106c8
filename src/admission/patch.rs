//! RFC 6902 JSON Patch documents kept as their JSON text while they are
//! built.
//!
//! Hardening writes each operation straight into the text the webhook sends
//! (base64 in `response.patch`), so no `serde_json::Value` tree is built,
//! walked and dropped per operation.

use std::fmt;

use serde::Serialize;

/// A JSON Patch of `add` and `replace` operations, as compact JSON text.
#[derive(Clone, PartialEq, Eq)]
pub struct JsonPatch {
    /// The document, always complete: `[]`, `[{…}]`, `[{…},{…}]`.
    json: Vec<u8>,
    ops: usize,
    /// Reference tokens written before every path (a pod template's place
    /// in its workload).
    prefix: &'static [&'static str],
}

impl Default for JsonPatch {
    fn default() -> Self {
        Self::new()
    }
}

impl JsonPatch {
    /// An empty patch, `[]`.
    pub fn new() -> Self {
        Self::under(&[])
    }

    /// An empty patch whose paths all start with `prefix`: the rules write
    /// pod paths (`/spec/…`), the patch applies to the object holding the
    /// pod template at `prefix` (`/spec/template/spec/…`).
    pub fn under(prefix: &'static [&'static str]) -> Self {
        JsonPatch {
            json: b"[]".to_vec(),
            ops: 0,
            prefix,
        }
    }

    /// Appends `{"op":"add","path":…,"value":…}`; `path` holds the
    /// unescaped reference tokens.
    pub fn add<T: Serialize + ?Sized>(&mut self, path: &[&str], value: &T) {
        self.push("add", path, value);
    }

    /// Appends `{"op":"replace","path":…,"value":…}`.
    pub fn replace<T: Serialize + ?Sized>(&mut self, path: &[&str], value: &T) {
        self.push("replace", path, value);
    }

    fn push<T: Serialize + ?Sized>(&mut self, op: &str, path: &[&str], value: &T) {
        let json = &mut self.json;
        json.pop();
        if self.ops > 0 {
            json.push(b',');
        }
        json.extend_from_slice(b"{\"op\":\"");
        json.extend_from_slice(op.as_bytes());
        json.extend_from_slice(b"\",\"path\":\"");
        for token in self.prefix.iter().chain(path) {
            json.push(b'/');
            write_token(json, token);
        }
        json.extend_from_slice(b"\",\"value\":");
        serde_json::to_writer(&mut *json, value).expect("Kubernetes types serialize");
        json.extend_from_slice(b"}]");
        self.ops += 1;
    }

    /// The number of operations.
    pub fn len(&self) -> usize {
        self.ops
    }

    /// Whether there is no operation.
    pub fn is_empty(&self) -> bool {
        self.ops == 0
    }

    /// The patch as JSON text.
    pub fn as_json(&self) -> &[u8] {
        &self.json
    }

    /// The operations, to apply with `json_patch::patch`.
    pub fn operations(&self) -> json_patch::Patch {
        serde_json::from_slice(&self.json).expect("a JsonPatch is a valid JSON Patch")
    }
}

impl fmt::Debug for JsonPatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&String::from_utf8_lossy(&self.json))
    }
}

/// Bytes a reference token can hold as they are inside a JSON string: all
/// but `~` and `/` (RFC 6901) and `"`, `\\` and control bytes (JSON).
static PLAIN: [bool; 256] = {
    let mut table = [true; 256];
    let mut b = 0;
    while b < 256 {
        table[b] = !matches!(b as u8, b'~' | b'/' | b'"' | b'\\' | 0..0x20);
        b += 1;
    }
    table
};

/// Appends `token` as an RFC 6901 reference token (`~` as `~0`, `/` as
/// `~1`) inside a JSON string.
fn write_token(json: &mut Vec<u8>, token: &str) {
    let bytes = token.as_bytes();
    // Field names and indices: nothing to escape.
    if bytes.iter().all(|&b| PLAIN[b as usize]) {
        json.extend_from_slice(bytes);
        return;
    }
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let escaped: &[u8] = match b {
            b'~' => b"~0",
            b'/' => b"~1",
            _ => continue,
        };
        fastjson::write_str_content(json, &token[start..i]);
        json.extend_from_slice(escaped);
        start = i + 1;
    }
    fastjson::write_str_content(json, &token[start..]);
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn operations_are_written_as_rfc_6902_json() {
        let mut patch = JsonPatch::new();
        assert_eq!(patch.as_json(), b"[]");
        assert!(patch.is_empty());
        patch.add(&["spec", "a/b", "~c~", "-"], &json!({"k": "v\"\n"}));
        patch.replace(&["spec", "hostPID"], &false);
        assert_eq!(patch.len(), 2);
        let text: serde_json::Value = serde_json::from_slice(patch.as_json()).unwrap();
        assert_eq!(
            text,
            json!([
                {"op": "add", "path": "/spec/a~1b/~0c~0/-", "value": {"k": "v\"\n"}},
                {"op": "replace", "path": "/spec/hostPID", "value": false},
            ])
        );
        let ops = patch.operations();
        let tokens: Vec<String> = match &ops.0[0] {
            json_patch::PatchOperation::Add(a) => {
                a.path.tokens().map(|t| t.decoded().into_owned()).collect()
            }
            other => panic!("expected add, got {other:?}"),
        };
        assert_eq!(tokens, ["spec", "a/b", "~c~", "-"]);
        let mut doc = json!({"spec": {"hostPID": true, "a/b": {"~c~": [{}]}}});
        json_patch::patch(&mut doc, &ops).unwrap();
        assert_eq!(doc["spec"]["hostPID"], false);
        assert_eq!(doc["spec"]["a/b"]["~c~"][1]["k"], "v\"\n");
    }

    #[test]
    fn a_prefix_starts_every_path() {
        let mut patch = JsonPatch::under(&["spec", "template"]);
        patch.add(&["spec", "hostPID"], &false);
        let text: serde_json::Value = serde_json::from_slice(patch.as_json()).unwrap();
        assert_eq!(
            text,
            json!([{"op": "add", "path": "/spec/template/spec/hostPID", "value": false}])
        );
    }
}
