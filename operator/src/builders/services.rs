//! The runtime's Services: a headless one for stable pod DNS names (pods forward calls to the
//! partition owner by name), and a client one for applications.

use k8s_openapi::api::core::v1::{Service, ServicePort, ServiceSpec};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use tollgate_crds::TollgateRuntime;

use super::{ChildNames, child_meta, selector_labels};

/// Name of the gRPC port (container and Services).
pub const GRPC_PORT_NAME: &str = "grpc";
/// Name of the HTTP port (container and Services).
pub const HTTP_PORT_NAME: &str = "http";

fn ports(rt: &TollgateRuntime) -> Vec<ServicePort> {
    let port = |name: &str, number: i32, app_protocol: &str| ServicePort {
        name: Some(name.into()),
        port: number,
        target_port: Some(IntOrString::String(name.into())),
        protocol: Some("TCP".into()),
        app_protocol: Some(app_protocol.into()),
        ..ServicePort::default()
    };
    vec![
        port(GRPC_PORT_NAME, rt.spec.ports.grpc, "grpc"),
        port(HTTP_PORT_NAME, rt.spec.ports.http, "http"),
    ]
}

/// `<runtime>-headless`: every pod, ready or not, gets a DNS name
/// (`<runtime>-<ordinal>.<runtime>-headless`), so pods find partition owners during start-up.
pub fn headless_service(rt: &TollgateRuntime) -> Service {
    Service {
        metadata: child_meta(rt, ChildNames::of(rt).headless_service()),
        spec: Some(ServiceSpec {
            cluster_ip: Some("None".into()),
            publish_not_ready_addresses: Some(true),
            selector: Some(selector_labels(rt)),
            ports: Some(ports(rt)),
            ..ServiceSpec::default()
        }),
        ..Service::default()
    }
}

/// `<runtime>`: the ClusterIP Service applications call (ready pods only).
pub fn client_service(rt: &TollgateRuntime) -> Service {
    Service {
        metadata: child_meta(rt, ChildNames::of(rt).main()),
        spec: Some(ServiceSpec {
            type_: Some("ClusterIP".into()),
            selector: Some(selector_labels(rt)),
            ports: Some(ports(rt)),
            ..ServiceSpec::default()
        }),
        ..Service::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::builders::test_runtime::runtime;
    use tollgate_crds::{RuntimePorts, TollgateRuntimeSpec};

    #[test]
    fn headless_service_publishes_every_pod() {
        let svc = headless_service(&runtime(TollgateRuntimeSpec::default()));
        assert_eq!(svc.metadata.name.as_deref(), Some("tollgate-headless"));
        let spec = svc.spec.unwrap();
        assert_eq!(spec.cluster_ip.as_deref(), Some("None"));
        assert_eq!(spec.publish_not_ready_addresses, Some(true));
        assert_eq!(
            spec.selector.unwrap()["app.kubernetes.io/instance"],
            "tollgate"
        );
    }

    #[test]
    fn client_service_exposes_grpc_and_http_on_the_spec_ports() {
        let rt = runtime(TollgateRuntimeSpec {
            ports: RuntimePorts {
                grpc: 9000,
                http: 9001,
            },
            ..TollgateRuntimeSpec::default()
        });
        let spec = client_service(&rt).spec.unwrap();
        let ports: Vec<(String, i32)> = spec
            .ports
            .unwrap()
            .into_iter()
            .map(|p| (p.name.unwrap(), p.port))
            .collect();
        assert_eq!(
            ports,
            [("grpc".to_string(), 9000), ("http".to_string(), 9001)]
        );
        assert_eq!(spec.type_.as_deref(), Some("ClusterIP"));
    }
}
