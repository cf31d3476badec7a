//! One channel to a running `tollgate serve`, and every call on it bounded by the deadline.

use super::args::ClientArgs;
use super::error::ClientError;
use crate::grpc::proto::{
    customers_client::CustomersClient, enforcement_client::EnforcementClient,
    metering_client::MeteringClient, wallets_client::WalletsClient,
};
use std::future::Future;
use std::time::{Duration, Instant};
use tonic::Code;
use tonic::transport::{Channel, Endpoint};

pub struct Connection {
    channel: Channel,
    timeout: Duration,
    timeout_ms: u64,
}

impl Connection {
    /// Connects now (not lazily), so an address where nothing listens fails here with a
    /// hint rather than as an UNAVAILABLE status of the first call.
    pub async fn open(args: &ClientArgs) -> Result<Self, ClientError> {
        let addr = with_scheme(&args.addr);
        let timeout = Duration::from_millis(args.timeout_ms);
        let endpoint = Endpoint::from_shared(addr.clone())
            .map_err(|source| ClientError::BadAddress {
                addr: args.addr.clone(),
                source,
            })?
            .connect_timeout(timeout);
        let channel = endpoint
            .connect()
            .await
            .map_err(|source| ClientError::Unreachable { addr, source })?;
        Ok(Self {
            channel,
            timeout,
            timeout_ms: args.timeout_ms,
        })
    }

    pub fn customers(&self) -> CustomersClient<Channel> {
        CustomersClient::new(self.channel.clone())
    }

    pub fn wallets(&self) -> WalletsClient<Channel> {
        WalletsClient::new(self.channel.clone())
    }

    pub fn enforcement(&self) -> EnforcementClient<Channel> {
        EnforcementClient::new(self.channel.clone())
    }

    pub fn metering(&self) -> MeteringClient<Channel> {
        MeteringClient::new(self.channel.clone())
    }

    /// A request carrying the deadline (sent as `grpc-timeout`, so the server can give up
    /// too).
    pub fn request<T>(&self, message: T) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        request.set_timeout(self.timeout);
        request
    }

    /// Awaits a call, giving up at the deadline.
    pub async fn call<T>(
        &self,
        call: impl Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    ) -> Result<T, ClientError> {
        let started = Instant::now();
        let deadline = ClientError::Deadline {
            timeout_ms: self.timeout_ms,
        };
        match tokio::time::timeout(self.timeout, call).await {
            Err(_elapsed) => Err(deadline),
            // A tonic server enforcing `grpc-timeout` answers CANCELLED "Timeout expired"
            // at the same moment: it is the same deadline.
            Ok(Err(status))
                if matches!(status.code(), Code::Cancelled | Code::DeadlineExceeded)
                    && started.elapsed() >= self.timeout =>
            {
                Err(deadline)
            }
            Ok(Err(status)) => Err(ClientError::Rpc(status)),
            Ok(Ok(response)) => Ok(response.into_inner()),
        }
    }
}

/// `127.0.0.1:50051` -> `http://127.0.0.1:50051`; an address with a scheme is kept.
fn with_scheme(addr: &str) -> String {
    if addr.contains("://") {
        addr.to_owned()
    } else {
        format!("http://{addr}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(addr: &str) -> ClientArgs {
        ClientArgs {
            addr: addr.to_owned(),
            json: false,
            timeout_ms: 2_000,
        }
    }

    #[test]
    fn adds_a_missing_scheme() {
        assert_eq!(with_scheme("127.0.0.1:50051"), "http://127.0.0.1:50051");
        assert_eq!(
            with_scheme("https://t.example:443"),
            "https://t.example:443"
        );
    }

    #[tokio::test]
    async fn refused_connection_gives_the_serve_hint() {
        // A port that was just free: bind, read it, drop the listener.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .unwrap()
            .port();
        let addr = format!("http://127.0.0.1:{port}");
        let Err(err) = Connection::open(&args(&addr)).await else {
            panic!("connected to a closed port");
        };
        assert_eq!(
            err.to_string(),
            format!("cannot reach tollgate at {addr}: is 'tollgate serve' running?")
        );
        assert!(err.detail().is_some());
    }

    #[tokio::test]
    async fn bad_address_names_the_flag() {
        let Err(err) = Connection::open(&args("http://exa mple")).await else {
            panic!("accepted a bad address");
        };
        assert!(err.to_string().starts_with("--addr"), "{err}");
    }
}
