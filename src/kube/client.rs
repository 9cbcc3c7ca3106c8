//! The thin shell around kube: connecting (kubeconfig, context, in-cluster),
//! retrying transient failures with backoff, and turning every failure into
//! one line that says what to do.

use std::fmt::Debug;
use std::future::Future;
use std::path::Path;
use std::time::Duration;

use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::core::{NamespaceResourceScope, Status};
use kube::{Client, Resource};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use k8s_openapi::api::admissionregistration::v1::{
    MutatingWebhookConfiguration, ValidatingWebhookConfiguration,
};
use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::{Namespace, Node, Pod, Secret, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::api::networking::v1::{NetworkPolicy, ServiceCIDR};

use super::FIELD_MANAGER;

/// A failure talking to the cluster, as one line.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// No kubeconfig and not in a cluster, or an unusable kubeconfig.
    #[error("{0}")]
    NoConfig(String),
    /// The API server cannot be reached.
    #[error("cluster unreachable: {0}")]
    Unreachable(String),
    /// 401: the credentials were refused.
    #[error(
        "unauthorized (401) from {url}: the API server refused the credentials; renew them (e.g. log in again) or pick another --context"
    )]
    Unauthorized {
        /// The API server.
        url: String,
    },
    /// 403: RBAC does not grant the request.
    #[error(
        "forbidden (403): {user} cannot {verb} {resource} {scope}; grant it with the RBAC rule {{apiGroups: [\"{group}\"], resources: [\"{resource}\"], verbs: [\"{verb}\"]}} in a {role}"
    )]
    Forbidden {
        /// Who was refused, as the API server names them.
        user: String,
        /// The verb refused.
        verb: String,
        /// The resource (plural).
        resource: String,
        /// Its API group (`""` for core).
        group: String,
        /// `in namespace X` or `at cluster scope`.
        scope: String,
        /// `Role in namespace X` or `ClusterRole`.
        role: String,
    },
    /// 409 on server-side apply: another field manager owns fields floe sets.
    #[error(
        "conflict (409) applying {object}: {detail}; another field manager owns these fields: rerun with --force-conflicts to take them over, or change them back with that tool"
    )]
    Conflict {
        /// The object.
        object: String,
        /// The conflicting fields and their managers.
        detail: String,
    },
    /// Any other refusal.
    #[error("{verb} {object}: {message} ({code} {reason})")]
    Api {
        /// The verb.
        verb: String,
        /// The object or collection.
        object: String,
        /// The API server's message.
        message: String,
        /// HTTP status.
        code: u16,
        /// Machine-readable reason.
        reason: String,
    },
}

/// A request, for messages: verb, resource and where.
#[derive(Debug, Clone)]
pub struct Op {
    verb: &'static str,
    group: String,
    resource: String,
    namespace: Option<String>,
    name: Option<String>,
    /// A write with a resourceVersion precondition (or a create): a 409
    /// means the object changed meanwhile, and repeating it cannot succeed.
    conditional: bool,
}

impl Op {
    fn new<K: Resource<DynamicType = ()>>(
        verb: &'static str,
        namespace: Option<&str>,
        name: Option<&str>,
    ) -> Self {
        Op {
            verb,
            group: K::group(&()).into_owned(),
            resource: K::plural(&()).into_owned(),
            namespace: namespace.map(Into::into),
            name: name.map(Into::into),
            conditional: false,
        }
    }

    fn conditional(self) -> Self {
        Op {
            conditional: true,
            ..self
        }
    }

    fn object(&self) -> String {
        let what = match &self.name {
            Some(n) => format!("{} {n}", self.resource),
            None => self.resource.clone(),
        };
        match &self.namespace {
            Some(ns) => format!("{what} in namespace {ns}"),
            None => what,
        }
    }
}

fn is_conflict(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 409)
}

fn is_field_conflict(s: &Status) -> bool {
    s.code == 409
        && s.details
            .as_ref()
            .is_some_and(|d| d.causes.iter().any(|c| c.reason == "FieldManagerConflict"))
}

/// Whether a failure is worth retrying: throttling, server errors, and
/// optimistic-concurrency conflicts (not field manager conflicts).
fn retryable(e: &kube::Error) -> Option<Duration> {
    match e {
        kube::Error::Api(s) if s.code == 429 || (500..600).contains(&s.code) => {
            Some(Duration::from_secs(
                s.details
                    .as_ref()
                    .map_or(0, |d| u64::from(d.retry_after_seconds)),
            ))
        }
        kube::Error::Api(s) if s.code == 409 && !is_field_conflict(s) => Some(Duration::ZERO),
        _ => None,
    }
}

/// The user the API server names in a 403 message (`User "x" cannot …`).
fn forbidden_user(message: &str) -> String {
    message
        .split_once("User \"")
        .and_then(|(_, rest)| rest.split_once('"'))
        .map_or_else(|| "the current user".into(), |(u, _)| format!("user {u:?}"))
}

fn error(op: &Op, url: &str, e: kube::Error) -> ClusterError {
    match e {
        kube::Error::Api(s) => match s.code {
            401 => ClusterError::Unauthorized { url: url.into() },
            403 => ClusterError::Forbidden {
                user: forbidden_user(&s.message),
                verb: op.verb.into(),
                resource: op.resource.clone(),
                group: op.group.clone(),
                scope: op.namespace.as_ref().map_or_else(
                    || "at cluster scope".into(),
                    |ns| format!("in namespace {ns}"),
                ),
                role: op.namespace.as_ref().map_or_else(
                    || "ClusterRole".into(),
                    |ns| format!("Role in namespace {ns} (or a ClusterRole)"),
                ),
            },
            409 if is_field_conflict(&s) => ClusterError::Conflict {
                object: op.object(),
                detail: s
                    .details
                    .as_ref()
                    .map(|d| {
                        d.causes
                            .iter()
                            .map(|c| c.message.clone())
                            .collect::<Vec<_>>()
                            .join("; ")
                    })
                    .filter(|d| !d.is_empty())
                    .unwrap_or(s.message.clone()),
            },
            code => ClusterError::Api {
                verb: op.verb.into(),
                object: op.object(),
                message: s.message.clone(),
                code,
                reason: s.reason.clone(),
            },
        },
        other => ClusterError::Unreachable(format!("{url}: {other}")),
    }
}

/// A resource type with its scope: how to address it in a namespace or not.
pub trait Scoped:
    Resource<DynamicType = ()> + Clone + DeserializeOwned + Serialize + Debug
{
    /// The API for this type, in `namespace` when the type is namespaced.
    fn api(client: Client, namespace: Option<&str>) -> Api<Self>;
}

macro_rules! namespaced {
    ($($t:ty),*) => {$(
        impl Scoped for $t {
            fn api(client: Client, namespace: Option<&str>) -> Api<Self> {
                namespace.map_or_else(|| Api::all(client.clone()), |ns| Api::namespaced(client.clone(), ns))
            }
        }
    )*};
}

macro_rules! cluster_scoped {
    ($($t:ty),*) => {$(
        impl Scoped for $t {
            fn api(client: Client, _: Option<&str>) -> Api<Self> {
                Api::all(client)
            }
        }
    )*};
}

namespaced!(NetworkPolicy, Pod, Service, EndpointSlice, DaemonSet);
cluster_scoped!(Namespace, Node, ServiceCIDR);
// `certs install`.
namespaced!(Secret);
cluster_scoped!(MutatingWebhookConfiguration, ValidatingWebhookConfiguration);

/// A connected cluster.
#[derive(Clone)]
pub struct Kube {
    client: Client,
    url: String,
    /// First retry delay (doubled on each attempt).
    backoff: Duration,
}

/// Attempts per request (the first one included).
const ATTEMPTS: u32 = 5;
/// Longest wait between attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

impl Kube {
    /// Connects with `--kubeconfig`/`--context`, else `$KUBECONFIG`,
    /// `~/.kube/config`, then the in-cluster ServiceAccount; checks that the
    /// API server answers on its address.
    pub async fn connect(
        kubeconfig: Option<&Path>,
        context: Option<&str>,
    ) -> Result<Kube, ClusterError> {
        // ring is the only TLS provider compiled in; kube's TLS setup wants it
        // installed as the process default.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let options = KubeConfigOptions {
            context: context.map(Into::into),
            ..Default::default()
        };
        let mut config = match kubeconfig {
            Some(path) => {
                let file = Kubeconfig::read_from(path).map_err(|e| {
                    ClusterError::NoConfig(format!(
                        "cannot read kubeconfig {}: {e}",
                        path.display()
                    ))
                })?;
                kube::Config::from_custom_kubeconfig(file, &options)
                    .await
                    .map_err(|e| {
                        ClusterError::NoConfig(format!(
                            "invalid kubeconfig {}: {e}",
                            path.display()
                        ))
                    })?
            }
            None if context.is_some() => kube::Config::from_kubeconfig(&options)
                .await
                .map_err(|e| ClusterError::NoConfig(format!("no usable kubeconfig: {e}")))?,
            None => kube::Config::infer().await.map_err(|e| {
                ClusterError::NoConfig(format!(
                    "no kubeconfig: set KUBECONFIG or pass --kubeconfig, or run in a cluster ({e})"
                ))
            })?,
        };
        let timeout = Duration::from_secs(5);
        config.connect_timeout = Some(timeout);
        config.read_timeout = Some(Duration::from_secs(30));
        let url = config.cluster_url.clone();
        let host = url
            .host()
            .unwrap_or_default()
            .trim_matches(['[', ']'])
            .to_string();
        let port = url
            .port_u16()
            .unwrap_or(if url.scheme_str() == Some("http") {
                80
            } else {
                443
            });
        match tokio::time::timeout(
            timeout,
            tokio::net::TcpStream::connect((host.as_str(), port)),
        )
        .await
        {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => {
                return Err(ClusterError::Unreachable(format!(
                    "cannot connect to {url}: {e}"
                )));
            }
            Err(_) => {
                return Err(ClusterError::Unreachable(format!(
                    "no answer from {url} within {timeout:?}"
                )));
            }
        }
        let client = Client::try_from(config)
            .map_err(|e| ClusterError::Unreachable(format!("{url}: {e}")))?;
        Ok(Kube {
            client,
            url: url.to_string(),
            backoff: Duration::from_millis(200),
        })
    }

    /// The underlying kube client, for calls this wrapper does not cover.
    pub fn client(&self) -> Client {
        self.client.clone()
    }

    async fn call<T, F, Fut>(&self, op: Op, f: F) -> Result<T, ClusterError>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<T, kube::Error>>,
    {
        let mut delay = self.backoff;
        for attempt in 1.. {
            match f().await {
                Ok(v) => return Ok(v),
                Err(e) => match retryable(&e).filter(|_| !(op.conditional && is_conflict(&e))) {
                    Some(after) if attempt < ATTEMPTS => {
                        let wait = after.max(delay).min(MAX_BACKOFF);
                        tracing::info!(verb = op.verb, object = op.object(), error = %e, ?wait, "retrying");
                        tokio::time::sleep(wait).await;
                        delay *= 2;
                    }
                    _ => return Err(error(&op, &self.url, e)),
                },
            }
        }
        unreachable!("the retry loop returns")
    }

    fn api<K>(&self, namespace: Option<&str>) -> Api<K>
    where
        K: Resource<DynamicType = (), Scope = NamespaceResourceScope>,
    {
        match namespace {
            Some(ns) => Api::namespaced(self.client.clone(), ns),
            None => Api::all(self.client.clone()),
        }
    }

    /// Lists a namespaced resource in `namespace` (all namespaces when
    /// `None`), filtered by a label selector.
    pub async fn list<K>(
        &self,
        namespace: Option<&str>,
        selector: Option<&str>,
    ) -> Result<Vec<K>, ClusterError>
    where
        K: Resource<DynamicType = (), Scope = NamespaceResourceScope>
            + Clone
            + DeserializeOwned
            + Debug,
    {
        self.list_in(
            self.api::<K>(namespace),
            Op::new::<K>("list", namespace, None),
            selector,
        )
        .await
    }

    /// Lists a cluster-scoped resource.
    pub async fn list_cluster<K>(&self, selector: Option<&str>) -> Result<Vec<K>, ClusterError>
    where
        K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug,
    {
        self.list_in(
            Api::all(self.client.clone()),
            Op::new::<K>("list", None, None),
            selector,
        )
        .await
    }

    async fn list_in<K>(
        &self,
        api: Api<K>,
        op: Op,
        selector: Option<&str>,
    ) -> Result<Vec<K>, ClusterError>
    where
        K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug,
    {
        let mut lp = ListParams::default();
        if let Some(s) = selector {
            lp = lp.labels(s);
        }
        Ok(self.call(op, || api.list(&lp)).await?.items)
    }

    /// Gets an object (namespaced when `namespace` is given) as JSON, `None`
    /// when it does not exist.
    pub async fn get<K>(
        &self,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<Option<K>, ClusterError>
    where
        K: Scoped,
    {
        let api = K::api(self.client.clone(), namespace);
        self.call(Op::new::<K>("get", namespace, Some(name)), || {
            api.get_opt(name)
        })
        .await
    }

    /// Server-side applies `obj` as field manager `floe-guard`; returns the
    /// object as the API server returned it.
    pub async fn apply<K>(&self, obj: &K, dry_run: bool, force: bool) -> Result<K, ClusterError>
    where
        K: Scoped,
    {
        let meta = obj.meta();
        let namespace = meta.namespace.as_deref();
        let name = meta.name.as_deref().unwrap_or_default();
        let api = K::api(self.client.clone(), namespace);
        let mut params = PatchParams::apply(FIELD_MANAGER);
        params.force = force;
        params.dry_run = dry_run;
        let patch = Patch::Apply(obj);
        self.call(Op::new::<K>("patch", namespace, Some(name)), || {
            api.patch(name, &params, &patch)
        })
        .await
    }

    /// Deletes an object.
    pub async fn delete<K>(
        &self,
        namespace: Option<&str>,
        name: &str,
        dry_run: bool,
    ) -> Result<(), ClusterError>
    where
        K: Scoped,
    {
        let api = K::api(self.client.clone(), namespace);
        let dp = DeleteParams {
            dry_run,
            ..Default::default()
        };
        self.call(Op::new::<K>("delete", namespace, Some(name)), || {
            api.delete(name, &dp)
        })
        .await
        .map(|_| ())
    }
}

/// Conditional writes (`certs install`): a 409 is returned at once as
/// [`ClusterError::Api`] with code 409, for the caller to read and plan again.
impl Kube {
    /// Creates an object (as field manager `floe-guard`).
    pub async fn create<K: Scoped>(&self, obj: &K) -> Result<K, ClusterError> {
        let meta = obj.meta();
        let namespace = meta.namespace.as_deref();
        let api = K::api(self.client.clone(), namespace);
        let params = post_params();
        let op = Op::new::<K>("create", namespace, meta.name.as_deref()).conditional();
        self.call(op, || api.create(&params, obj)).await
    }

    /// Replaces an object; its `metadata.resourceVersion` is the precondition.
    pub async fn replace<K: Scoped>(&self, obj: &K) -> Result<K, ClusterError> {
        let meta = obj.meta();
        let namespace = meta.namespace.as_deref();
        let name = meta.name.as_deref().unwrap_or_default();
        let api = K::api(self.client.clone(), namespace);
        let params = post_params();
        let op = Op::new::<K>("update", namespace, Some(name)).conditional();
        self.call(op, || api.replace(name, &params, obj)).await
    }

    /// Strategic-merge-patches a cluster-scoped object; a
    /// `metadata.resourceVersion` in the patch is the precondition.
    pub async fn patch_strategic<K: Scoped>(
        &self,
        name: &str,
        patch: &Value,
    ) -> Result<K, ClusterError> {
        let api = K::api(self.client.clone(), None);
        let params = PatchParams {
            field_manager: Some(FIELD_MANAGER.into()),
            ..Default::default()
        };
        let patch = Patch::Strategic(patch);
        let op = Op::new::<K>("patch", None, Some(name)).conditional();
        self.call(op, || api.patch(name, &params, &patch)).await
    }
}

fn post_params() -> PostParams {
    PostParams {
        field_manager: Some(FIELD_MANAGER.into()),
        ..Default::default()
    }
}

impl Kube {
    /// Whether the API server serves resource `K` (API discovery of its
    /// group version): a 404 for the group version means "not served here"
    /// (an older Kubernetes, or the API disabled), not a failure.
    pub async fn serves<K>(&self) -> Result<bool, ClusterError>
    where
        K: Resource<DynamicType = ()>,
    {
        if K::group(&()).is_empty() {
            return Ok(true);
        }
        let api_version = K::api_version(&());
        let r = self
            .call(Op::new::<K>("get", None, None), || {
                self.client.list_api_group_resources(&api_version)
            })
            .await;
        match r {
            Ok(list) => Ok(list.resources.iter().any(|r| r.name == K::plural(&()))),
            Err(ClusterError::Api { code: 404, .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Lists a cluster-scoped resource when the API server serves it;
    /// `None` when it does not (see [`Kube::serves`]).
    pub async fn list_cluster_if_served<K>(
        &self,
        selector: Option<&str>,
    ) -> Result<Option<Vec<K>>, ClusterError>
    where
        K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug,
    {
        if !self.serves::<K>().await? {
            return Ok(None);
        }
        match self.list_cluster::<K>(selector).await {
            Ok(items) => Ok(Some(items)),
            Err(ClusterError::Api { code: 404, .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Records a Kubernetes Event (`events.k8s.io/v1`) in `namespace`.
    pub async fn create_event(&self, event: &Event) -> Result<(), ClusterError> {
        let namespace = event.metadata.namespace.as_deref();
        let api: Api<Event> = Api::namespaced(self.client.clone(), namespace.unwrap_or("default"));
        let pp = PostParams::default();
        self.call(Op::new::<Event>("create", namespace, None), || {
            api.create(&pp, event)
        })
        .await
        .map(|_| ())
    }
}

/// An object as JSON (for comparisons of what the API server returned).
pub fn to_json<K: Serialize>(obj: &K) -> Value {
    serde_json::to_value(obj).unwrap_or(Value::Null)
}
