//! AuthService.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use pressluft_proto::v1 as pb;
use pressluft_proto::v1::auth_service_server::AuthService;
use tonic::{Request, Status};

use super::convert::{self, ts};
use super::{RpcResult, audit_change, caller, ok};
use crate::auth::LoginLimiter;
use crate::error::Error;
use crate::model::validate::{self, Invalid};
use crate::model::{TokenId, TokenKind};
use crate::secrets::Secret;
use crate::store::{PageToken, Store};

/// Handlers of AuthService.
pub struct Auth {
    pub store: Store,
    pub login_limiter: Arc<LoginLimiter>,
    pub session_ttl: Duration,
    pub trusted_proxies: Vec<IpAddr>,
}

#[tonic::async_trait]
impl AuthService for Auth {
    async fn login(&self, request: Request<pb::LoginRequest>) -> RpcResult<pb::LoginResponse> {
        let address = super::client_address(&request, &self.trusted_proxies);
        let r = request.into_inner();
        if r.email.is_empty()
            || r.password.is_empty()
            || r.email.len() > 254
            || r.password.len() > 1024
        {
            return Err(Error::Unauthenticated("invalid email or password").into());
        }
        let s = self;
        let (secret, token, user) = crate::auth::login(
            &s.store,
            &s.login_limiter,
            s.session_ttl,
            &address,
            &r.email,
            &r.password,
        )
        .await?;
        ok(pb::LoginResponse {
            token: secret.expose().to_owned(),
            expire_time: token.expires_at.map(ts),
            user: Some(convert::user(&user)),
        })
    }

    async fn logout(&self, request: Request<pb::LogoutRequest>) -> RpcResult<pb::LogoutResponse> {
        let caller = caller(&request)?;
        self.store
            .revoke_token(caller.user_id, caller.token_id)
            .await?;
        ok(pb::LogoutResponse {})
    }

    async fn get_current_user(
        &self,
        request: Request<pb::GetCurrentUserRequest>,
    ) -> RpcResult<pb::GetCurrentUserResponse> {
        let caller = caller(&request)?;
        let user = self.store.user(caller.user_id).await?;
        ok(pb::GetCurrentUserResponse {
            user: Some(convert::user(&user)),
            token_name: if caller.kind == TokenKind::Api {
                caller.token_name
            } else {
                String::new()
            },
        })
    }

    async fn create_api_token(
        &self,
        request: Request<pb::CreateApiTokenRequest>,
    ) -> RpcResult<pb::CreateApiTokenResponse> {
        let caller = caller(&request)?;
        let r = request.into_inner();
        let name = validate::display_text("name", &r.name, 100)?;
        let ttl = match r.ttl {
            None => None,
            Some(d) if d.seconds == 0 && d.nanos == 0 => None,
            Some(d) if d.seconds < 60 || d.nanos < 0 => {
                return Err(Status::from(Invalid {
                    field: "ttl",
                    message: "must be at least 60 seconds".into(),
                }));
            }
            Some(d) => Some(Duration::from_secs(d.seconds as u64)),
        };
        let (secret, token) =
            crate::auth::create_api_token(&self.store, caller.user_id, &name, ttl).await?;
        audit_change(
            &self.store,
            &caller,
            "api_token.create",
            "api_token",
            token.id.to_string(),
            name,
        )
        .await?;
        ok(pb::CreateApiTokenResponse {
            token: Some(convert::api_token(&token)),
            secret: secret.expose().to_owned(),
        })
    }

    async fn list_api_tokens(
        &self,
        request: Request<pb::ListApiTokensRequest>,
    ) -> RpcResult<pb::ListApiTokensResponse> {
        let caller = caller(&request)?;
        let r = request.into_inner();
        let limit = validate::page_size(r.page_size, 50, 500)?;
        let page = self
            .store
            .list_tokens(
                caller.user_id,
                TokenKind::Api,
                limit,
                PageToken::decode(&r.page_token)?,
            )
            .await?;
        ok(pb::ListApiTokensResponse {
            tokens: page.items.iter().map(convert::api_token).collect(),
            next_page_token: page.next_page_token,
        })
    }

    async fn revoke_api_token(
        &self,
        request: Request<pb::RevokeApiTokenRequest>,
    ) -> RpcResult<pb::RevokeApiTokenResponse> {
        let caller = caller(&request)?;
        let id: TokenId = validate::id("token_id", &request.get_ref().token_id)?;
        let token = self.store.revoke_token(caller.user_id, id).await?;
        audit_change(
            &self.store,
            &caller,
            "api_token.revoke",
            "api_token",
            id.to_string(),
            token.name.clone(),
        )
        .await?;
        ok(pb::RevokeApiTokenResponse {
            token: Some(convert::api_token(&token)),
        })
    }

    async fn create_user(
        &self,
        request: Request<pb::CreateUserRequest>,
    ) -> RpcResult<pb::CreateUserResponse> {
        let caller = caller(&request)?;
        let r = request.into_inner();
        let email = validate::email("email", &r.email)?;
        let display_name = if r.display_name.is_empty() {
            String::new()
        } else {
            validate::display_text("display_name", &r.display_name, 100)?
        };
        if r.password.len() > 1024 {
            return Err(Status::from(Invalid {
                field: "password",
                message: "is too long".into(),
            }));
        }
        let user = crate::auth::create_user(
            &self.store,
            &email,
            &display_name,
            Some(&Secret::new(r.password)),
        )
        .await?;
        audit_change(
            &self.store,
            &caller,
            "user.create",
            "user",
            user.id.to_string(),
            email,
        )
        .await?;
        ok(pb::CreateUserResponse {
            user: Some(convert::user(&user)),
        })
    }

    async fn list_users(
        &self,
        request: Request<pb::ListUsersRequest>,
    ) -> RpcResult<pb::ListUsersResponse> {
        let r = request.into_inner();
        let limit = validate::page_size(r.page_size, 50, 500)?;
        let page = self
            .store
            .list_users(limit, PageToken::decode(&r.page_token)?)
            .await?;
        ok(pb::ListUsersResponse {
            users: page.items.iter().map(convert::user).collect(),
            next_page_token: page.next_page_token,
        })
    }
}
