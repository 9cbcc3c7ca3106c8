use floe_guard::log_format::LogLine;
use floe_guard::log_writer::BatchedStderr;
#[global_allocator]
static ALLOCATOR: floe_guard::allocator::MiMalloc = floe_guard::allocator::MiMalloc;
fn main() {
    let n: usize = std::env::args().nth(1).unwrap().parse().unwrap();
    let json = std::env::args().nth(2).is_some();
    let (w, flusher) = BatchedStderr::start().unwrap();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_new("info").unwrap())
        .event_format(LogLine { json })
        .with_writer(w)
        .init();
    let uid = String::from("705ab4f5-6393-11e8-b7cc-42010a800002");
    let kind = String::from("Pod");
    let op = String::from("CREATE");
    let ns = String::from("floe-jobs");
    let name = String::from("ingest-orders-28911-");
    for i in 0..n {
        tracing::info!(
            webhook = "mutate",
            uid = uid.as_str(),
            kind = kind.as_str(),
            operation = op.as_str(),
            namespace = ns.as_str(),
            name = name.as_str(),
            allowed = true,
            patch_ops = 6u64,
            patch_bytes = 784u64,
            duration_us = i as u64,
            "review"
        );
    }
    drop(flusher);
}
