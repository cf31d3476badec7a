//! The operator's errors.

/// Why a reconcile failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("Kubernetes API call failed: {0}")]
    Kube(#[from] kube::Error),
    #[error("cannot build the policy bundle: {0}")]
    Bundle(#[from] crate::bundle::BundleError),
    #[error("{kind} {name} has no namespace; Tollgate resources are namespaced")]
    NotNamespaced { kind: &'static str, name: String },
    #[error("cannot serialize {what}: {source}")]
    Serialize {
        what: &'static str,
        #[source]
        source: serde_json::Error,
    },
}

impl Error {
    /// A stable code for the `error` label of the reconcile error metric.
    pub fn code(&self) -> &'static str {
        match self {
            Error::Kube(kube::Error::Api(_)) => "api_status",
            Error::Kube(_) => "api_transport",
            Error::Bundle(crate::bundle::BundleError::TooLarge { .. }) => "bundle_too_large",
            Error::Bundle(_) => "bundle_serialize",
            Error::NotNamespaced { .. } => "not_namespaced",
            Error::Serialize { .. } => "serialize",
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
