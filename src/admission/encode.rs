//! Encoding of the AdmissionReview response, byte for byte as the API
//! server reads it.

use base64::Engine as _;
use serde::Serialize;

use super::{Answer, ReviewLog, Reviewed};

/// Writes the `AdmissionReview` response. Written by hand rather than through
/// a serialized struct so the base64 patch is copied once, not escaped.
pub(super) fn encode(mut log: ReviewLog, a: Answer) -> Reviewed {
    let mut body = Vec::with_capacity(256 + a.message.len());
    body.extend_from_slice(
        br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","response":{"uid":"#,
    );
    fastjson::write_str(&mut body, &log.uid);
    body.extend_from_slice(if a.allowed {
        br#","allowed":true"#
    } else {
        br#","allowed":false"#
    });
    if let Some(patch) = a.patch.filter(|p| !p.is_empty()) {
        let json = patch.as_json();
        log.patch_ops = patch.len();
        log.patch_bytes = json.len();
        body.extend_from_slice(br#","patchType":"JSONPatch","patch":""#);
        let start = body.len();
        body.resize(start + json.len().div_ceil(3) * 4, 0);
        let written = base64::engine::general_purpose::STANDARD
            .encode_slice(json, &mut body[start..])
            .expect("room for the padded encoding");
        body.truncate(start + written);
        body.push(b'"');
    }
    if !a.allowed || !a.message.is_empty() {
        body.extend_from_slice(br#","status":"#);
        write_json(
            &mut body,
            &StatusOut {
                status: if a.allowed { "Success" } else { "Failure" },
                code: a.code,
                reason: match a.code {
                    400 => "BadRequest",
                    403 => "Forbidden",
                    _ => "",
                },
                message: &a.message,
            },
        );
    }
    if !a.warnings.is_empty() {
        body.extend_from_slice(br#","warnings":"#);
        write_json(&mut body, &a.warnings);
    }
    if !a.audit.is_empty() {
        body.extend_from_slice(br#","auditAnnotations":"#);
        write_json(&mut body, &a.audit);
    }
    body.extend_from_slice(b"}}");
    log.allowed = a.allowed;
    Reviewed { body, log }
}

fn write_json<T: Serialize + ?Sized>(out: &mut Vec<u8>, value: &T) {
    serde_json::to_writer(out, value).expect("strings and maps serialize");
}

#[derive(Serialize)]
struct StatusOut<'a> {
    status: &'static str,
    code: u16,
    #[serde(skip_serializing_if = "str::is_empty")]
    reason: &'static str,
    message: &'a str,
}
