//! Start-up: logging, the health server, leader election, then both controllers.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Context as _;
use futures::StreamExt;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{ConfigMap, Pod, Service, ServiceAccount};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::{Controller, watcher};
use kube::{Api, Client, ResourceExt};
use prometheus::Registry;
use tollgate_crds::{BudgetCap, Entitlement, Plan, TollgateRuntime};

use crate::FIELD_MANAGER;
use crate::builders::{
    BuildDefaults, INSTANCE_LABEL, MANAGED_BY_LABEL, NAME_LABEL, RUNTIME_APP_NAME,
};
use crate::config::Config;
use crate::context::Context;
use crate::http::{Health, router};
use crate::leader::LeaderElector;
use crate::metrics::Metrics;
use crate::{plan_controller, runtime_controller};

/// Runs the operator until a signal or a lost lease.
pub async fn run(config: Config) -> anyhow::Result<()> {
    init_logging(config.log_json);
    let client = Client::try_default()
        .await
        .context("connecting to the Kubernetes API")?;
    let registry = Registry::new();
    let metrics = Metrics::register(&registry).context("registering metrics")?;
    let started = Arc::new(AtomicBool::new(false));
    let listener = tokio::net::TcpListener::bind(config.http_addr)
        .await
        .with_context(|| format!("binding {}", config.http_addr))?;
    let app = router(Health {
        registry,
        started: started.clone(),
    });
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "health server stopped");
        }
    });
    started.store(true, Ordering::Relaxed);

    let elector = LeaderElector::new(
        client.clone(),
        &config.lease_namespace,
        &config.lease_name,
        &config.identity,
    );
    tracing::info!(identity = %config.identity, lease = %config.lease_name, "waiting for leadership");
    elector.acquire().await;
    tracing::info!("leading: starting controllers");

    let defaults = BuildDefaults {
        runtime_image: config.runtime_image.clone(),
        image_pull_secrets: config
            .runtime_image_pull_secrets
            .iter()
            .filter(|name| !name.is_empty())
            .cloned()
            .collect(),
    };
    let ctx = Arc::new(Context::new(
        client.clone(),
        metrics,
        defaults,
        Some(config.identity.clone()),
    ));
    let scopes = config.scopes();
    tracing::info!(
        namespaces = %scopes.iter().map(|s| s.as_deref().unwrap_or("*")).collect::<Vec<_>>().join(","),
        "reconciling TollgateRuntimes and policy objects"
    );
    let all = futures::future::join_all(
        scopes
            .into_iter()
            .map(|scope| controllers(client.clone(), ctx.clone(), scope)),
    );
    tokio::select! {
        _ = all => tracing::info!("controllers stopped"),
        () = elector.hold() => anyhow::bail!("lost the leader lease; exiting so a standby takes over"),
    }
    Ok(())
}

/// Every kind the controllers watch, in the whole cluster or in one namespace.
fn api<K>(client: &Client, scope: Option<&str>) -> Api<K>
where
    K: kube::Resource<Scope = kube::core::NamespaceResourceScope>,
    K::DynamicType: Default,
{
    match scope {
        None => Api::all(client.clone()),
        Some(namespace) => Api::namespaced(client.clone(), namespace),
    }
}

/// Both controllers over one scope: the whole cluster (`None`) or one namespace.
async fn controllers(client: Client, ctx: Arc<Context>, scope: Option<String>) {
    let scope = scope.as_deref();
    let runtimes = api::<TollgateRuntime>(&client, scope);
    let runtime_controller = Controller::new(runtimes, watcher::Config::default());
    let store = runtime_controller.store();
    // Every runtime of a namespace compiles that namespace's policy objects.
    let in_namespace = move |ns: Option<String>| {
        store
            .state()
            .into_iter()
            .filter(|rt| rt.namespace() == ns)
            .map(|rt| ObjectRef::from_obj(&*rt))
            .collect::<Vec<_>>()
    };
    let (for_plans, for_ents, for_caps) =
        (in_namespace.clone(), in_namespace.clone(), in_namespace);
    let pod_selector =
        watcher::Config::default().labels(&format!("{NAME_LABEL}={RUNTIME_APP_NAME}"));
    // Every child carries this label (`builders::child_meta`): the watches hold the
    // runtimes' objects, not every ConfigMap and Service of the cluster, and a child edited
    // or deleted by hand is put back at once rather than at the next resync.
    let children =
        || watcher::Config::default().labels(&format!("{MANAGED_BY_LABEL}={FIELD_MANAGER}"));
    let runtimes = runtime_controller
        .owns(api::<StatefulSet>(&client, scope), children())
        .owns(api::<ConfigMap>(&client, scope), children())
        .owns(api::<Service>(&client, scope), children())
        .owns(api::<ServiceAccount>(&client, scope), children())
        .owns(api::<PodDisruptionBudget>(&client, scope), children())
        .owns(api::<Role>(&client, scope), children())
        .owns(api::<RoleBinding>(&client, scope), children())
        .watches(
            api::<Plan>(&client, scope),
            watcher::Config::default(),
            move |o| for_plans(o.namespace()),
        )
        .watches(
            api::<Entitlement>(&client, scope),
            watcher::Config::default(),
            move |o| for_ents(o.namespace()),
        )
        .watches(
            api::<BudgetCap>(&client, scope),
            watcher::Config::default(),
            move |o| for_caps(o.namespace()),
        )
        .watches(api::<Pod>(&client, scope), pod_selector, |pod: Pod| {
            let runtime = pod.labels().get(INSTANCE_LABEL).cloned();
            runtime.map(|name| ObjectRef::new(&name).within(&pod.namespace().unwrap_or_default()))
        })
        .shutdown_on_signal()
        .run(
            runtime_controller::reconcile,
            runtime_controller::error_policy,
            ctx.clone(),
        )
        .for_each(|_| futures::future::ready(()));
    let plans = Controller::new(api::<Plan>(&client, scope), watcher::Config::default())
        .shutdown_on_signal()
        .run(
            plan_controller::reconcile,
            plan_controller::error_policy,
            ctx,
        )
        .for_each(|_| futures::future::ready(()));
    tokio::join!(runtimes, plans);
}

fn init_logging(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}
