//! One channel to the server, shared by every typed service client.

use std::fmt;
use std::time::Duration;

use pressluft_proto::v1::audit_service_client::AuditServiceClient;
use pressluft_proto::v1::auth_service_client::AuthServiceClient;
use pressluft_proto::v1::job_service_client::JobServiceClient;
use pressluft_proto::v1::node_query_service_client::NodeQueryServiceClient;
use pressluft_proto::v1::node_service_client::NodeServiceClient;
use pressluft_proto::v1::settings_service_client::SettingsServiceClient;
use pressluft_proto::v1::site_service_client::SiteServiceClient;
use tonic::metadata::AsciiMetadataValue;
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, ClientTlsConfig, Endpoint};

use crate::config::Token;
use crate::error::Error;
use crate::target::Target;

/// How long establishing a connection may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// HTTP/2 ping interval on open streams, so a dead connection under a long watch stream is
/// noticed instead of hanging forever.
const KEEP_ALIVE_INTERVAL: Duration = Duration::from_secs(30);
const KEEP_ALIVE_TIMEOUT: Duration = Duration::from_secs(10);

/// The channel every client uses: a tonic channel that adds the bearer token.
pub type AuthChannel = InterceptedService<Channel, BearerAuth>;

/// Interceptor adding `authorization: Bearer <token>` to every request when a token is set.
#[derive(Clone, Default)]
pub struct BearerAuth {
    header: Option<AsciiMetadataValue>,
}

impl BearerAuth {
    /// An interceptor sending `token`, or nothing when `None`.
    pub fn new(token: Option<&Token>) -> Result<Self, Error> {
        let Some(token) = token else {
            return Ok(BearerAuth { header: None });
        };
        let mut header = AsciiMetadataValue::try_from(format!("Bearer {}", token.expose()))
            .map_err(|_| Error::InvalidToken)?;
        header.set_sensitive(true);
        Ok(BearerAuth {
            header: Some(header),
        })
    }
}

impl fmt::Debug for BearerAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let token = if self.header.is_some() { "***" } else { "none" };
        f.debug_struct("BearerAuth").field("token", &token).finish()
    }
}

impl Interceptor for BearerAuth {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(header) = &self.header {
            request
                .metadata_mut()
                .insert("authorization", header.clone());
        }
        Ok(request)
    }
}

/// Every typed service client, sharing one channel. Cloning is cheap.
#[derive(Debug, Clone)]
pub struct Clients {
    /// Sessions, API tokens, users.
    pub auth: AuthServiceClient<AuthChannel>,
    /// Node registry and provisioning.
    pub node: NodeServiceClient<AuthChannel>,
    /// Sites, environments, releases, backups, domains, caches.
    pub site: SiteServiceClient<AuthChannel>,
    /// Jobs: get, list, cancel, watch.
    pub job: JobServiceClient<AuthChannel>,
    /// Read-only node queries (magic login, PHP, disk, `WordPress`, `MariaDB`).
    pub node_query: NodeQueryServiceClient<AuthChannel>,
    /// The audit log.
    pub audit: AuditServiceClient<AuthChannel>,
    /// Control-plane settings.
    pub settings: SettingsServiceClient<AuthChannel>,
}

impl Clients {
    /// Builds every client on `channel`, each sending the credentials of `auth`.
    pub fn new(channel: Channel, auth: &BearerAuth) -> Self {
        let service = InterceptedService::new(channel, auth.clone());
        Clients {
            auth: AuthServiceClient::new(service.clone()),
            node: NodeServiceClient::new(service.clone()),
            site: SiteServiceClient::new(service.clone()),
            job: JobServiceClient::new(service.clone()),
            node_query: NodeQueryServiceClient::new(service.clone()),
            audit: AuditServiceClient::new(service.clone()),
            settings: SettingsServiceClient::new(service),
        }
    }
}

/// The tonic endpoint for a target: connect timeout, keep-alive, and TLS for `https://`.
pub fn endpoint(target: &Target) -> Result<Endpoint, Error> {
    let invalid = |detail: String| Error::InvalidServer {
        server: target.server.clone(),
        detail,
    };
    let mut endpoint = Endpoint::from_shared(target.server.clone())
        .map_err(|err| invalid(err.to_string()))?
        .connect_timeout(CONNECT_TIMEOUT)
        .http2_keep_alive_interval(KEEP_ALIVE_INTERVAL)
        .keep_alive_timeout(KEEP_ALIVE_TIMEOUT)
        .user_agent(concat!("pressluft-client/", env!("CARGO_PKG_VERSION")))
        .map_err(|err| invalid(err.to_string()))?;
    if target.server.starts_with("https://") {
        endpoint = endpoint
            .tls_config(ClientTlsConfig::new().with_native_roots())
            .map_err(|err| invalid(err.to_string()))?;
    }
    Ok(endpoint)
}

/// Connects now and returns the clients; fails fast when the server cannot be reached.
pub async fn connect(target: &Target) -> Result<Clients, Error> {
    let auth = BearerAuth::new(target.token.as_ref())?;
    let channel = endpoint(target)?
        .connect()
        .await
        .map_err(|err| Error::connect(&target.server, &err))?;
    Ok(Clients::new(channel, &auth))
}

/// Returns the clients without connecting; each call connects (and reconnects) as needed.
/// For long-running programs such as the TUI, which must not block on the network.
/// Must be called inside a Tokio runtime.
pub fn connect_lazy(target: &Target) -> Result<Clients, Error> {
    let auth = BearerAuth::new(target.token.as_ref())?;
    Ok(Clients::new(endpoint(target)?.connect_lazy(), &auth))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_auth_adds_the_header_only_with_a_token() {
        let mut with = BearerAuth::new(Some(&Token::new("abc"))).expect("valid");
        let request = with.call(tonic::Request::new(())).expect("ok");
        assert_eq!(
            request
                .metadata()
                .get("authorization")
                .and_then(|value| value.to_str().ok()),
            Some("Bearer abc")
        );
        assert!(!format!("{with:?}").contains("abc"));

        let mut without = BearerAuth::new(None).expect("valid");
        let request = without.call(tonic::Request::new(())).expect("ok");
        assert!(request.metadata().get("authorization").is_none());
    }

    #[test]
    fn a_token_with_control_characters_is_rejected() {
        let err = BearerAuth::new(Some(&Token::new("a\nb"))).expect_err("invalid");
        assert!(matches!(err, Error::InvalidToken));
    }

    #[tokio::test]
    async fn connecting_to_a_closed_port_is_unavailable() {
        // Bind then drop a listener to get a port nothing listens on.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("bind")
            .port();
        let target = Target::new(&format!("http://127.0.0.1:{port}"), None).expect("valid");
        let err = connect(&target).await.expect_err("nothing listens");
        assert_eq!(err.kind(), crate::ErrorKind::Unavailable);
        assert!(
            err.to_string()
                .starts_with("cannot connect to http://127.0.0.1:"),
            "{err}"
        );
    }
}
