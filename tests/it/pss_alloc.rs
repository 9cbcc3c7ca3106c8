//! The evaluator allocates nothing for a compliant pod (it runs on the
//! admission hot path): counted with a global allocator in this test binary.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use floe_guard::pss::{self, Level};
use k8s_openapi::api::core::v1::PodSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

struct Counting;

thread_local! {
    /// Allocations made by this thread: the other tests of the binary run
    /// on other threads at the same time.
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

fn allocations() -> usize {
    ALLOCATIONS.with(Cell::get)
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // `try_with`: the slot may be gone while the thread exits.
        let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn compliant_pod_costs_no_allocation() {
    let pod = serde_json::json!({
        "metadata": {"annotations": {"container.apparmor.security.beta.kubernetes.io/app": "runtime/default"}},
        "spec": {
            "securityContext": {
                "runAsNonRoot": true,
                "seccompProfile": {"type": "RuntimeDefault"},
                "sysctls": [{"name": "net.ipv4.tcp_syncookies", "value": "1"}],
            },
            "initContainers": [{"name": "init", "image": "i",
                "securityContext": {"allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}}}],
            "containers": [{"name": "app", "image": "i",
                "ports": [{"containerPort": 8080}],
                "livenessProbe": {"httpGet": {"port": 8080}},
                "securityContext": {"allowPrivilegeEscalation": false, "runAsUser": 1000,
                    "capabilities": {"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]}}}],
            "volumes": [{"name": "tmp", "emptyDir": {}}, {"name": "cfg", "configMap": {"name": "c"}}],
        }
    });
    let meta: ObjectMeta = serde_json::from_value(pod["metadata"].clone()).unwrap();
    let spec: PodSpec = serde_json::from_value(pod["spec"].clone()).unwrap();

    let before = allocations();
    let restricted = pss::check(&meta, &spec, Level::Restricted);
    let baseline = pss::check(&meta, &spec, Level::Baseline);
    let after = allocations();
    assert!(
        restricted.is_empty() && baseline.is_empty(),
        "{restricted:?} {baseline:?}"
    );
    assert_eq!(
        after - before,
        0,
        "allocations while checking a compliant pod"
    );

    // The counter does see the evaluator's allocations when there is something to report.
    let mut bad = spec.clone();
    bad.host_pid = Some(true);
    let before = allocations();
    let violations = pss::check(&meta, &bad, Level::Baseline);
    assert!(allocations() > before);
    assert_eq!(violations.len(), 1);
}
