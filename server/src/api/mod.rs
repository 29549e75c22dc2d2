//! The gRPC edge: thin tonic handlers that validate and convert requests, call one store or
//! domain function, and convert the result. No SQL and no business rule lives here.
//!
//! One axum router serves native gRPC and grpc-web (layered on the gRPC routes only, so plain
//! HTTP can reach the UI later), the standard health service and server reflection. The bearer
//! token check is a route layer in front of every method except the public ones.

mod audit;
mod auth;
pub mod convert;
mod jobs;
mod node_queries;
mod nodes;
mod settings;
mod sites;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse as _, Response};
use pressluft_proto::v1 as pb;
use tonic::service::Routes;

use crate::error::Error;
use crate::state::AppState;
use crate::store::{Caller, Store};

/// Methods callable without a token. Everything else requires `authorization: Bearer`.
const PUBLIC_PATHS: &[&str] = &["/pressluft.v1.AuthService/Login"];
const PUBLIC_PREFIXES: &[&str] = &[
    "/grpc.health.v1.Health/",
    "/grpc.reflection.v1.ServerReflection/",
    "/grpc.reflection.v1alpha.ServerReflection/",
];

/// Whether `path` is served without authentication.
pub fn is_public(path: &str) -> bool {
    PUBLIC_PATHS.contains(&path) || PUBLIC_PREFIXES.iter().any(|p| path.starts_with(p))
}

/// Builds the router with every service, each handed the parts of the state it uses.
pub async fn router(state: Arc<AppState>) -> axum::Router {
    let config = &state.config;
    let store = &state.store;
    let (health_reporter, health_service) = tonic_health::server::health_reporter();
    health_reporter
        .set_serving::<pb::node_service_server::NodeServiceServer<nodes::Nodes>>()
        .await;
    health_reporter
        .set_serving::<pb::site_service_server::SiteServiceServer<sites::Sites>>()
        .await;
    health_reporter
        .set_serving::<pb::job_service_server::JobServiceServer<jobs::Jobs>>()
        .await;
    health_reporter
        .set_serving::<pb::auth_service_server::AuthServiceServer<auth::Auth>>()
        .await;
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(pressluft_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()
        .expect("the embedded descriptor sets are valid");

    let routes = Routes::new(health_service)
        .add_service(reflection)
        .add_service(pb::auth_service_server::AuthServiceServer::new(
            auth::Auth {
                store: store.clone(),
                login_limiter: state.login_limiter.clone(),
                session_ttl: config.session_ttl,
                trusted_proxies: config.trusted_proxies.clone(),
            },
        ))
        .add_service(pb::node_service_server::NodeServiceServer::new(
            nodes::Nodes {
                store: store.clone(),
                ssh_connect_timeout: config.ssh_connect_timeout,
                control_plane_key: state.control_plane_key.clone(),
            },
        ))
        .add_service(pb::site_service_server::SiteServiceServer::new(
            sites::Sites {
                store: store.clone(),
                secret_box: state.secret_box.clone(),
                limits: sites::SiteLimits {
                    data_dir: config.data_dir.clone(),
                    allow_private_networks: config.allow_private_networks,
                    max_upload_bytes: config.max_upload_bytes,
                    upload_quota_bytes: config.upload_quota_bytes,
                    min_backup_interval: config.min_backup_interval,
                    min_backup_retention: config.min_backup_retention,
                },
                upload_quota: state.upload_quota.clone(),
            },
        ))
        .add_service(pb::job_service_server::JobServiceServer::new(jobs::Jobs {
            store: store.clone(),
            shutdown: state.shutdown.clone(),
        }))
        .add_service(pb::node_query_service_server::NodeQueryServiceServer::new(
            node_queries::NodeQueryApi {
                queries: state.node_queries(),
            },
        ))
        .add_service(pb::audit_service_server::AuditServiceServer::new(
            audit::Audit {
                store: store.clone(),
            },
        ))
        .add_service(pb::settings_service_server::SettingsServiceServer::new(
            settings::SettingsApi {
                store: store.clone(),
                secret_box: state.secret_box.clone(),
                allow_private_networks: config.allow_private_networks,
                rclone: config.rclone.clone(),
            },
        ));

    routes
        .into_axum_router()
        .route_layer(axum::middleware::from_fn_with_state(
            store.clone(),
            authenticate,
        ))
        .route_layer(tonic_web::GrpcWebLayer::new())
        .route_layer(axum::middleware::from_fn_with_state(
            state.metrics.clone(),
            crate::metrics::measure,
        ))
        .route(
            "/healthz",
            axum::routing::get(healthz).with_state(store.clone()),
        )
        .fallback(crate::ui::serve)
}

/// `GET /healthz`: 200 `ok` while the server is up and its database answers, else 503 (for
/// service managers, load balancers and install.sh; gRPC clients have grpc.health.v1).
async fn healthz(State(store): State<Store>) -> Response {
    match store.ping().await {
        Ok(()) => (http::StatusCode::OK, "ok\n").into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "health check: the database does not answer");
            (
                http::StatusCode::SERVICE_UNAVAILABLE,
                "database unavailable\n",
            )
                .into_response()
        }
    }
}

/// Resolves the bearer token into a [`Caller`] stored in the request's extensions.
async fn authenticate(State(store): State<Store>, mut request: Request, next: Next) -> Response {
    if is_public(request.uri().path()) {
        return next.run(request).await;
    }
    match resolve_caller(&store, request.headers()).await {
        Ok(caller) => {
            request.extensions_mut().insert(caller);
            next.run(request).await
        }
        Err(error) => tonic::Status::from(error)
            .into_http::<axum::body::Body>()
            .into_response(),
    }
}

async fn resolve_caller(store: &Store, headers: &http::HeaderMap) -> Result<Caller, Error> {
    let missing =
        Error::Unauthenticated("missing credentials: send `authorization: Bearer <token>`");
    let value = headers.get(http::header::AUTHORIZATION).ok_or(missing)?;
    let token = value
        .to_str()
        .ok()
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
        .filter(|t| !t.is_empty() && t.len() <= 256)
        .ok_or(Error::Unauthenticated(
            "malformed authorization header: expected `Bearer <token>`",
        ))?;
    store
        .caller_for_token(&crate::auth::token_hash(token))
        .await?
        .ok_or(Error::Unauthenticated(
            "invalid, expired or revoked token; log in again",
        ))
}

/// The client's address: the connection's peer, or, when the peer is a trusted proxy, the
/// last address its `X-Forwarded-For` names (the one the proxy itself saw). "unknown" when
/// the transport has no address (in-process tests).
pub fn client_address<T>(request: &tonic::Request<T>, trusted_proxies: &[IpAddr]) -> String {
    let peer = request
        .extensions()
        .get::<axum::extract::ConnectInfo<SocketAddr>>()
        .map(|info| info.0.ip());
    let Some(peer) = peer else {
        return "unknown".to_owned();
    };
    let forwarded = || {
        request
            .metadata()
            .get("x-forwarded-for")?
            .to_str()
            .ok()?
            .rsplit(',')
            .next()?
            .trim()
            .parse::<IpAddr>()
            .ok()
    };
    match trusted_proxies.contains(&peer).then(forwarded).flatten() {
        Some(client) => client.to_string(),
        None => peer.to_string(),
    }
}

/// The authenticated caller of a request (set by [`authenticate`]).
pub fn caller<T>(request: &tonic::Request<T>) -> Result<Caller, tonic::Status> {
    request
        .extensions()
        .get::<Caller>()
        .cloned()
        .ok_or_else(|| Error::Unauthenticated("missing credentials").into())
}

/// Records a change `caller` made directly (jobs write their own rows when accepted and
/// when they end).
pub async fn audit_change(
    store: &Store,
    caller: &Caller,
    action: impl Into<String>,
    resource_type: &'static str,
    resource_id: impl ToString,
    detail: impl Into<String>,
) -> Result<(), Error> {
    store
        .record_audit(&crate::store::AuditEntry {
            actor: caller.actor(),
            action: action.into(),
            resource_type,
            resource_id: resource_id.to_string(),
            result: crate::model::AuditResult::Succeeded,
            detail: detail.into(),
            job_id: None,
        })
        .await
}

/// Shorthand for handler results.
pub type RpcResult<T> = Result<tonic::Response<T>, tonic::Status>;

/// Wraps a message into a response.
pub fn ok<T>(message: T) -> RpcResult<T> {
    Ok(tonic::Response::new(message))
}

/// Answer of an RPC whose execution lands in a later release.
pub fn not_yet<T>(what: &'static str) -> RpcResult<T> {
    Err(Error::Unimplemented(what).into())
}
