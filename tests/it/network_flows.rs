//! The product spec of issue #4, as reachability assertions on the policies
//! generated for the default config and for a config with two domains.

use floe_guard::config::{Config, Protocol};
use floe_guard::network::reach::{self, Endpoint, Flow, Pod};
use floe_guard::network::rules::Labels;
use floe_guard::network::{NAMESPACE_NAME_LABEL, generate};
use k8s_openapi::api::networking::v1::NetworkPolicy;

const TWO_DOMAINS: &str = r#"
domains: [sales, marketing]
security:
  network_policies:
    cluster_cidrs: [10.244.0.0/16, 10.96.0.0/12]
    api_server: {cidrs: [172.18.0.2/32]}
    jobs_egress_allow:
      - {name: snowflake, cidr: 0.0.0.0/0, port: 443}
      - {name: warehouse, namespace: floe-platform, pod_labels: {app: trino}, port: 8080}
      - {name: kafka, namespace: streaming, port: 9092}
"#;

fn default_policies() -> Vec<NetworkPolicy> {
    generate(&Config::default())
        .unwrap()
        .policies()
        .cloned()
        .collect()
}

fn two_domain_policies() -> Vec<NetworkPolicy> {
    let config = Config::from_yaml(TWO_DOMAINS, "test").unwrap();
    generate(&config).unwrap().policies().cloned().collect()
}

fn pod(ns: &str, labels: &[(&str, &str)]) -> Endpoint {
    let labels: Labels = labels
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Endpoint::Pod(Pod::new(ns, labels))
}

fn pod_at(ns: &str, ip: &str) -> Endpoint {
    let mut p = Pod::new(ns, Labels::new());
    p.ip = Some(ip.parse().unwrap());
    Endpoint::Pod(p)
}

fn ip(s: &str) -> Endpoint {
    Endpoint::External(s.parse().unwrap())
}

fn allowed(
    policies: &[NetworkPolicy],
    from: &Endpoint,
    to: &Endpoint,
    port: u16,
    protocol: Protocol,
) -> bool {
    reach::evaluate(
        policies,
        &Flow {
            from: from.clone(),
            to: to.clone(),
            port,
            protocol,
        },
    )
    .allowed
}

fn tcp(policies: &[NetworkPolicy], from: &Endpoint, to: &Endpoint, port: u16) -> bool {
    allowed(policies, from, to, port, Protocol::TCP)
}

fn jobs() -> Endpoint {
    pod("floe-jobs", &[("job-name", "ingest")])
}

fn dns() -> Endpoint {
    pod("kube-system", &[("k8s-app", "kube-dns")])
}

fn dagster_webserver() -> Endpoint {
    pod(
        "floe-platform",
        &[
            ("app.kubernetes.io/name", "dagster"),
            ("component", "dagster-webserver"),
        ],
    )
}

fn polaris() -> Endpoint {
    pod("floe-platform", &[("app.kubernetes.io/name", "polaris")])
}

fn both() -> [Vec<NetworkPolicy>; 2] {
    [default_policies(), two_domain_policies()]
}

const PROBE_PORTS: [u16; 8] = [22, 53, 80, 443, 3000, 5432, 8181, 9000];

#[test]
fn every_managed_namespace_is_default_deny_both_ways() {
    let policies = two_domain_policies();
    let outsider = pod("default", &[("app", "web")]);
    for ns in [
        "floe-platform",
        "floe-jobs",
        "floe-sales-domain",
        "floe-marketing-domain",
    ] {
        let inside = pod(ns, &[("app", "x")]);
        for port in [22, 80, 5432, 12345] {
            assert!(
                !tcp(&policies, &outsider, &inside, port),
                "default -> {ns}:{port}"
            );
            assert!(
                !tcp(&policies, &inside, &outsider, port),
                "{ns} -> default:{port}"
            );
        }
    }
}

#[test]
fn dns_is_allowed_from_every_managed_namespace_over_udp_and_tcp() {
    for policies in both() {
        for ns in [
            "floe-platform",
            "floe-jobs",
            "floe-sales-domain",
            "floe-marketing-domain",
        ] {
            let from = pod(ns, &[]);
            if !policies
                .iter()
                .any(|p| p.metadata.namespace.as_deref() == Some(ns))
            {
                continue; // no such domain in the default config
            }
            assert!(
                allowed(&policies, &from, &dns(), 53, Protocol::UDP),
                "{ns} UDP 53"
            );
            assert!(
                allowed(&policies, &from, &dns(), 53, Protocol::TCP),
                "{ns} TCP 53"
            );
            // Only the DNS pods, only port 53.
            let other = pod("kube-system", &[("k8s-app", "metrics-server")]);
            assert!(
                !allowed(&policies, &from, &other, 53, Protocol::UDP),
                "{ns} -> other kube-system pod"
            );
            assert!(
                !allowed(&policies, &from, &dns(), 9153, Protocol::TCP),
                "{ns} -> DNS metrics"
            );
        }
    }
}

#[test]
fn jobs_reach_platform_services_and_nothing_else_there() {
    for policies in both() {
        for port in [8181, 4317, 4318, 9000] {
            assert!(
                tcp(&policies, &jobs(), &polaris(), port),
                "jobs -> platform:{port}"
            );
        }
        assert!(
            !tcp(&policies, &jobs(), &dagster_webserver(), 3000),
            "jobs -> dagster webserver"
        );
        assert!(!tcp(&policies, &jobs(), &polaris(), 5432));
        assert!(!allowed(
            &policies,
            &jobs(),
            &polaris(),
            8181,
            Protocol::UDP
        ));
    }
}

#[test]
fn jobs_have_no_ingress_and_no_pod_to_pod() {
    for policies in both() {
        for port in PROBE_PORTS {
            assert!(
                !tcp(&policies, &jobs(), &pod("floe-jobs", &[]), port),
                "jobs -> jobs:{port}"
            );
            assert!(
                !tcp(&policies, &polaris(), &jobs(), port),
                "platform -> jobs:{port}"
            );
            assert!(!tcp(&policies, &pod("ingress-nginx", &[]), &jobs(), port));
            assert!(!tcp(&policies, &ip("203.0.113.10"), &jobs(), port));
        }
    }
}

#[test]
fn jobs_egress_outside_is_https_only_and_not_to_metadata() {
    for policies in both() {
        assert!(tcp(&policies, &jobs(), &ip("203.0.113.10"), 443));
        assert!(
            !tcp(&policies, &jobs(), &ip("203.0.113.10"), 53),
            "external TCP 53"
        );
        assert!(
            !allowed(&policies, &jobs(), &ip("8.8.8.8"), 53, Protocol::UDP),
            "external UDP 53"
        );
        assert!(!tcp(&policies, &jobs(), &ip("203.0.113.10"), 80));
        assert!(
            !tcp(&policies, &jobs(), &ip("169.254.169.254"), 443),
            "metadata"
        );
        assert!(
            !tcp(&policies, &jobs(), &ip("169.254.169.254"), 80),
            "metadata"
        );
        assert!(
            !tcp(&policies, &jobs(), &pod("default", &[]), 443),
            "pod in default"
        );
        assert!(
            !tcp(&policies, &jobs(), &pod("default", &[]), 80),
            "pod in default"
        );
    }
}

#[test]
fn cluster_cidrs_keep_jobs_off_pods_where_ip_blocks_match_pod_addresses() {
    // Calico applies ipBlock to pod addresses: a pod in `default` at 10.244.1.5.
    let target = pod_at("default", "10.244.1.5");
    let service = pod_at("default", "10.96.0.10");
    let with_cidrs = two_domain_policies();
    assert!(!tcp(&with_cidrs, &jobs(), &target, 443));
    assert!(!tcp(&with_cidrs, &jobs(), &service, 443));
    // Without them (the summary warns), 443 to that pod is open: the reason they exist.
    assert!(tcp(&default_policies(), &jobs(), &target, 443));
}

#[test]
fn ingress_controller_reaches_platform_and_domains() {
    for policies in both() {
        let nginx = pod(
            "ingress-nginx",
            &[("app.kubernetes.io/name", "ingress-nginx")],
        );
        assert!(
            tcp(&policies, &nginx, &dagster_webserver(), 3000),
            "ingress-nginx -> dagster webserver"
        );
        assert!(!tcp(
            &policies,
            &pod("default", &[]),
            &dagster_webserver(),
            3000
        ));
        assert!(!tcp(
            &policies,
            &ip("203.0.113.10"),
            &dagster_webserver(),
            3000
        ));
    }
    let policies = two_domain_policies();
    let nginx = pod("ingress-nginx", &[]);
    assert!(tcp(
        &policies,
        &nginx,
        &pod("floe-sales-domain", &[("app", "api")]),
        8080
    ));
}

#[test]
fn ingress_namespace_is_configurable() {
    let config = Config::from_yaml(
        "security: {network_policies: {ingress_namespace: traefik}}",
        "test",
    )
    .unwrap();
    let policies: Vec<NetworkPolicy> = generate(&config).unwrap().policies().cloned().collect();
    assert!(tcp(
        &policies,
        &pod("traefik", &[]),
        &dagster_webserver(),
        3000
    ));
    assert!(!tcp(
        &policies,
        &pod("ingress-nginx", &[]),
        &dagster_webserver(),
        3000
    ));
}

#[test]
fn platform_talks_to_itself_api_server_and_https_only() {
    let policies = two_domain_policies();
    assert!(tcp(&policies, &dagster_webserver(), &polaris(), 8181));
    assert!(tcp(
        &policies,
        &dagster_webserver(),
        &pod("floe-platform", &[]),
        5432
    ));
    for port in [443, 6443] {
        assert!(
            tcp(&policies, &dagster_webserver(), &ip("172.18.0.2"), port),
            "API :{port}"
        );
    }
    assert!(tcp(
        &policies,
        &dagster_webserver(),
        &ip("203.0.113.10"),
        443
    ));
    assert!(!tcp(
        &policies,
        &dagster_webserver(),
        &ip("203.0.113.10"),
        80
    ));
    assert!(!tcp(
        &policies,
        &dagster_webserver(),
        &pod("floe-sales-domain", &[]),
        8080
    ));
    assert!(!tcp(
        &policies,
        &dagster_webserver(),
        &pod("default", &[]),
        80
    ));
    // Unknown API server: no rule for 6443 (443 is external HTTPS anyway).
    assert!(!tcp(
        &default_policies(),
        &dagster_webserver(),
        &ip("172.18.0.2"),
        6443
    ));
}

#[test]
fn domains_reach_polaris_and_otel_but_not_minio_nor_each_other() {
    let policies = two_domain_policies();
    let sales = pod("floe-sales-domain", &[("app", "dbt")]);
    let marketing = pod("floe-marketing-domain", &[("app", "dbt")]);
    for port in [8181, 4317, 4318] {
        assert!(
            tcp(&policies, &sales, &polaris(), port),
            "domain -> platform:{port}"
        );
    }
    assert!(!tcp(&policies, &sales, &polaris(), 9000), "domain -> MinIO");
    assert!(!tcp(&policies, &sales, &dagster_webserver(), 3000));
    assert!(tcp(
        &policies,
        &sales,
        &pod("floe-sales-domain", &[("app", "api")]),
        8080
    ));
    for port in PROBE_PORTS {
        assert!(
            !tcp(&policies, &sales, &marketing, port),
            "sales -> marketing:{port}"
        );
        assert!(
            !tcp(&policies, &marketing, &sales, port),
            "marketing -> sales:{port}"
        );
        assert!(!tcp(&policies, &sales, &jobs(), port));
        assert!(!tcp(&policies, &jobs(), &sales, port));
    }
    assert!(
        !tcp(&policies, &sales, &ip("203.0.113.10"), 443),
        "domains have no external HTTPS"
    );
}

#[test]
fn extra_jobs_egress_is_opened_on_both_ends_and_only_there() {
    let policies = two_domain_policies();
    let trino = pod("floe-platform", &[("app", "trino")]);
    assert!(tcp(&policies, &jobs(), &trino, 8080));
    assert!(
        !tcp(&policies, &jobs(), &polaris(), 8080),
        "only the trino pods"
    );
    assert!(
        !tcp(&policies, &pod("floe-sales-domain", &[]), &trino, 8080),
        "only from jobs"
    );
    assert!(tcp(&policies, &jobs(), &pod("streaming", &[]), 9092));
    assert!(!tcp(&policies, &jobs(), &pod("streaming", &[]), 9093));
}

#[test]
fn an_egress_allowance_without_the_ingress_side_opens_nothing() {
    let policies: Vec<NetworkPolicy> = default_policies()
        .into_iter()
        .filter(|p| {
            !(p.metadata.namespace.as_deref() == Some("floe-platform")
                && p.metadata.name.as_deref() == Some("floe-allow-ingress"))
        })
        .collect();
    let verdict = reach::evaluate(
        &policies,
        &Flow {
            from: jobs(),
            to: polaris(),
            port: 8181,
            protocol: Protocol::TCP,
        },
    );
    assert!(verdict.egress.allows() && !verdict.ingress.allows() && !verdict.allowed);
}

#[test]
fn objects_are_labelled_and_namespaces_selected_by_metadata_name() {
    let g = generate(&Config::from_yaml(TWO_DOMAINS, "test").unwrap()).unwrap();
    for p in g.policies() {
        let labels = p.metadata.labels.clone().unwrap_or_default();
        assert_eq!(
            labels
                .get("app.kubernetes.io/managed-by")
                .map(String::as_str),
            Some("floe")
        );
        let ns = p.metadata.namespace.clone().unwrap();
        if let Some(domain) = ns
            .strip_prefix("floe-")
            .and_then(|d| d.strip_suffix("-domain"))
        {
            assert_eq!(
                labels.get("floe.dev/domain").map(String::as_str),
                Some(domain)
            );
            assert_eq!(
                labels.get("floe.dev/layer").map(String::as_str),
                Some("data")
            );
        }
        let spec = p.spec.clone().unwrap();
        let peers = spec
            .ingress
            .iter()
            .flatten()
            .flat_map(|r| r.from.clone().unwrap_or_default())
            .chain(
                spec.egress
                    .iter()
                    .flatten()
                    .flat_map(|r| r.to.clone().unwrap_or_default()),
            );
        for peer in peers {
            if let Some(sel) = peer.namespace_selector {
                let keys: Vec<String> = sel.match_labels.unwrap_or_default().into_keys().collect();
                assert_eq!(keys, [NAMESPACE_NAME_LABEL]);
                assert!(sel.match_expressions.is_none());
            }
        }
    }
    let names: Vec<String> = g
        .policies()
        .filter(|p| p.metadata.name.as_deref() == Some("floe-default-deny"))
        .map(|p| p.metadata.namespace.clone().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "floe-platform",
            "floe-jobs",
            "floe-sales-domain",
            "floe-marketing-domain"
        ]
    );
}

#[test]
fn allowances_into_jobs_or_a_domain_are_refused() {
    for (target, key) in [
        ("floe-jobs", "jobs_egress_allow"),
        ("floe-sales-domain", "platform_egress_allow"),
    ] {
        let yaml = format!(
            "domains: [sales]\nsecurity: {{network_policies: {{{key}: [{{name: x, namespace: {target}, port: 80}}]}}}}"
        );
        let err = generate(&Config::from_yaml(&yaml, "test").unwrap()).unwrap_err();
        assert!(err.to_string().contains(&format!("{key}[0] (x)")), "{err}");
    }
}

#[test]
fn disabled_generates_nothing_and_external_https_can_be_turned_off() {
    let off = Config::from_yaml("security: {network_policies: {enabled: false}}", "t").unwrap();
    assert_eq!(generate(&off).unwrap().policies().count(), 0);
    let no_https = Config::from_yaml(
        "security: {network_policies: {external_https: {enabled: false}}}",
        "t",
    )
    .unwrap();
    let policies: Vec<NetworkPolicy> = generate(&no_https).unwrap().policies().cloned().collect();
    assert!(!tcp(&policies, &jobs(), &ip("203.0.113.10"), 443));
    // DNS stays: it cannot be turned off.
    assert!(allowed(&policies, &jobs(), &dns(), 53, Protocol::UDP));
}

#[test]
fn bootstrap_facts_fill_what_the_config_leaves_out() {
    use floe_guard::config::{ApiServer, Cidr, Port};
    use floe_guard::network::{ClusterFacts, generate_with};
    let facts = ClusterFacts {
        cluster_cidrs: Some(vec![Cidr("10.244.0.0/16".parse().unwrap())]),
        api_server: Some(ApiServer {
            cidrs: vec![Cidr("10.0.0.1/32".parse().unwrap())],
            ports: vec![Port(6443)],
        }),
    };
    let g = generate_with(&Config::default(), &facts).unwrap();
    let policies: Vec<NetworkPolicy> = g.policies().cloned().collect();
    let platform = pod("floe-platform", &[]);
    assert!(tcp(&policies, &platform, &ip("10.0.0.1"), 6443));
    assert!(!tcp(
        &policies,
        &jobs(),
        &pod_at("default", "10.244.3.3"),
        443
    ));
    // The config wins over discovery.
    let config = Config::from_yaml(TWO_DOMAINS, "t").unwrap();
    let g = generate_with(&config, &facts).unwrap();
    assert_eq!(g.api_server.unwrap().cidrs[0].to_string(), "172.18.0.2/32");
}
