//! The offline commands: `mutate`, `check-namespace`, `pss check`.

use anyhow::bail;

use super::{
    CheckNamespaceArgs, MutateArgs, Outcome, PssCheckArgs, TextOrJson, input_name, read_input,
};
use crate::pss;
use crate::yaml;

/// `floe-guard pss check`.
pub fn pss_check(a: PssCheckArgs) -> anyhow::Result<Outcome> {
    let name = input_name(&a.file);
    let object = yaml::parse_one(&read_input(&a.file)?, &name)?;
    let (meta, spec) = yaml::pod_template(&object, &name)?;
    let violations = pss::check(&meta, &spec, a.level);
    match a.output {
        TextOrJson::Json => println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "level": a.level.as_str(),
                "allowed": violations.is_empty(),
                "violations": violations,
            }))?
        ),
        TextOrJson::Text if violations.is_empty() => {
            println!("{name}: satisfies {}", a.level)
        }
        TextOrJson::Text => {
            let n = violations.len();
            let noun = if n == 1 { "violation" } else { "violations" };
            println!("{name}: violates {} ({n} {noun})", a.level);
            for v in &violations {
                println!("  - {} at {}\n      {}", v.check, v.path, v.message);
            }
        }
    }
    Ok(if violations.is_empty() {
        Outcome::Clean
    } else {
        Outcome::Finding
    })
}

/// `floe-guard mutate`.
pub fn mutate(_a: MutateArgs) -> anyhow::Result<Outcome> {
    bail!("mutate: in progress")
}

/// `floe-guard check-namespace`.
pub fn check_namespace(_a: CheckNamespaceArgs) -> anyhow::Result<Outcome> {
    bail!("check-namespace: in progress")
}
