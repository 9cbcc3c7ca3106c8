//! `floe-guard pss check` as a user runs it: exit codes, text and JSON output,
//! standard input, workload templates.

use std::io::Write;
use std::process::{Command, Output, Stdio};

const COMPLIANT: &str = r#"
apiVersion: v1
kind: Pod
metadata: {name: ok}
spec:
  securityContext: {runAsNonRoot: true, seccompProfile: {type: RuntimeDefault}}
  containers:
  - name: app
    image: app:1
    securityContext: {allowPrivilegeEscalation: false, capabilities: {drop: [ALL]}}
"#;

const ROOT_JOB: &str = r#"
apiVersion: batch/v1
kind: Job
metadata: {name: root}
spec:
  template:
    spec:
      restartPolicy: Never
      securityContext: {runAsNonRoot: true, seccompProfile: {type: RuntimeDefault}}
      containers:
      - name: app
        image: app:1
        securityContext:
          runAsUser: 0
          allowPrivilegeEscalation: false
          capabilities: {drop: [ALL]}
"#;

fn run(args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_floe-guard"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run floe-guard");
    // A usage error exits before reading standard input: a broken pipe is expected then.
    let _ = child.stdin.take().unwrap().write_all(stdin.as_bytes());
    child.wait_with_output().unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).unwrap()
}

#[test]
fn compliant_pod_from_stdin_exits_0() {
    let o = run(
        &["pss", "check", "--level", "restricted", "-f", "-"],
        COMPLIANT,
    );
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    assert_eq!(stdout(&o), "<stdin>: satisfies restricted\n");
}

#[test]
fn violations_exit_3_with_check_path_and_message() {
    let o = run(
        &["pss", "check", "--level", "restricted", "-f", "-"],
        ROOT_JOB,
    );
    assert_eq!(o.status.code(), Some(3), "{o:?}");
    let text = stdout(&o);
    assert!(
        text.starts_with("<stdin>: violates restricted (1 violation)\n"),
        "{text}"
    );
    assert!(
        text.contains("runAsUser at spec.containers[0].securityContext.runAsUser"),
        "{text}"
    );
    assert!(
        text.contains(r#"container "app" sets runAsUser=0"#),
        "{text}"
    );
    // The same Job satisfies baseline.
    let o = run(
        &["pss", "check", "--level", "baseline", "-f", "-"],
        ROOT_JOB,
    );
    assert_eq!(o.status.code(), Some(0), "{o:?}");
}

#[test]
fn json_output_lists_violations() {
    let o = run(
        &[
            "pss",
            "check",
            "--level",
            "restricted",
            "-f",
            "-",
            "-o",
            "json",
        ],
        ROOT_JOB,
    );
    assert_eq!(o.status.code(), Some(3), "{o:?}");
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(report["level"], "restricted");
    assert_eq!(report["allowed"], false);
    assert_eq!(
        report["violations"],
        serde_json::json!([{
            "check": "runAsUser",
            "path": "spec.containers[0].securityContext.runAsUser",
            "container": "app",
            "message": "container \"app\" sets runAsUser=0 (root); allowed: a non-zero UID or unset",
        }])
    );

    let o = run(
        &[
            "pss", "check", "--level", "baseline", "-f", "-", "-o", "json",
        ],
        COMPLIANT,
    );
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(report["allowed"], true);
    assert_eq!(report["violations"], serde_json::json!([]));
}

#[test]
fn bad_input_exits_1_and_privileged_level_is_a_usage_error() {
    let o = run(
        &["pss", "check", "--level", "baseline", "-f", "-"],
        "kind: [",
    );
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    assert!(String::from_utf8_lossy(&o.stderr).contains("<stdin>"));
    let o = run(
        &["pss", "check", "--level", "privileged", "-f", "-"],
        COMPLIANT,
    );
    assert_eq!(o.status.code(), Some(2), "{o:?}");
}
