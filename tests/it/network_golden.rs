//! Golden files: what `network generate` writes for the default config and
//! for `examples/network-manifest.yaml`. Regenerate after an intended change
//! with `FLOE_GUARD_UPDATE_GOLDEN=1 cargo test --test network_golden`.

use std::path::Path;

use floe_guard::config::Config;
use floe_guard::network::{files, generate};

fn check(config: &Config, dir: &str) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden/network")
        .join(dir);
    let rendered = files::render(&generate(config).unwrap());
    if std::env::var_os("FLOE_GUARD_UPDATE_GOLDEN").is_some() {
        let _ = std::fs::remove_dir_all(&dir);
        files::write(&dir, &rendered).unwrap();
    }
    let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    on_disk.sort();
    let mut names: Vec<String> = rendered.iter().map(|f| f.name.clone()).collect();
    names.sort();
    assert_eq!(on_disk, names, "files in {}", dir.display());
    for f in &rendered {
        let golden = std::fs::read_to_string(dir.join(&f.name)).unwrap();
        assert_eq!(f.text, golden, "{} differs from the golden file", f.name);
    }
}

#[test]
fn default_config() {
    check(&Config::default(), "default");
}

#[test]
fn two_domains_example() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/network-manifest.yaml");
    check(&Config::load(&path).unwrap(), "two-domains");
}

#[test]
fn generation_is_deterministic() {
    let a = files::render(&generate(&Config::default()).unwrap());
    let b = files::render(&generate(&Config::default()).unwrap());
    assert_eq!(a, b);
}
