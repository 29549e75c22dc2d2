//! Users and their tokens (login sessions and API tokens, stored only as hashes).

use sqlx::FromRow;

use super::page::{PageToken, invalid_page_token, key, paginate};
use super::{Page, Store, now, unique_violation};
use crate::error::{Error, Result};
use crate::model::{TokenId, TokenKind, UserId};

/// A row of `users`.
#[derive(Debug, Clone, FromRow)]
pub struct UserRecord {
    pub id: UserId,
    pub email: String,
    pub display_name: String,
    /// argon2id PHC string; `None` for service accounts that cannot log in.
    pub password_hash: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    pub state_version: i64,
}

/// A row of `api_tokens` (without the hash).
#[derive(Debug, Clone, FromRow)]
pub struct TokenRecord {
    pub id: TokenId,
    pub user_id: UserId,
    pub name: String,
    pub kind: TokenKind,
    pub created_at: i64,
    pub expires_at: Option<i64>,
    pub last_used_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

/// The authenticated caller of an RPC, resolved from its bearer token.
#[derive(Debug, Clone, FromRow)]
pub struct Caller {
    pub user_id: UserId,
    pub email: String,
    pub token_id: TokenId,
    pub token_name: String,
    pub kind: TokenKind,
    pub last_used_at: Option<i64>,
}

impl Caller {
    /// How the caller appears in audit rows and jobs.
    pub fn actor(&self) -> String {
        match self.kind {
            TokenKind::Session => self.email.clone(),
            TokenKind::Api => format!("{} (token {})", self.email, self.token_name),
        }
    }
}

/// `last_used_at` is refreshed at most this often, so reads do not all become writes.
const TOUCH_INTERVAL_MS: i64 = 60_000;

impl Store {
    /// Creates a user; ALREADY_EXISTS when the email is taken.
    pub async fn create_user(
        &self,
        email: &str,
        display_name: &str,
        password_hash: Option<&str>,
    ) -> Result<UserRecord> {
        let now = now();
        let id = UserId::new();
        sqlx::query(
            "INSERT INTO users (id, email, display_name, password_hash, created_at, updated_at)
             VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(id)
        .bind(email)
        .bind(display_name)
        .bind(password_hash)
        .bind(now)
        .bind(now)
        .execute(&self.pool)
        .await
        .map_err(|e| unique_violation(e, || format!("a user with email {email} already exists")))?;
        self.user(id).await
    }

    /// A user by id.
    pub async fn user(&self, id: UserId) -> Result<UserRecord> {
        sqlx::query_as::<_, UserRecord>(
            "SELECT id, email, display_name, password_hash, created_at, updated_at, state_version
             FROM users WHERE id = ?",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?
        .ok_or_else(|| Error::not_found("user", &id))
    }

    /// Replaces a user's password hash and revokes their sessions, in one transaction (a
    /// reset password locks out whoever held the old one). Returns the sessions revoked.
    pub async fn set_password(&self, id: UserId, password_hash: &str) -> Result<u64> {
        let now = now();
        let mut tx = self.write().await?;
        let updated = sqlx::query(
            "UPDATE users SET password_hash = ?, updated_at = ?, state_version = state_version + 1
             WHERE id = ?",
        )
        .bind(password_hash)
        .bind(now)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        if updated.rows_affected() == 0 {
            return Err(Error::not_found("user", &id));
        }
        let revoked = sqlx::query(
            "UPDATE api_tokens SET revoked_at = ?
             WHERE user_id = ? AND kind = 'session' AND revoked_at IS NULL",
        )
        .bind(now)
        .bind(id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        Ok(revoked)
    }

    /// A user by (lowercase) email.
    pub async fn user_by_email(&self, email: &str) -> Result<Option<UserRecord>> {
        Ok(sqlx::query_as::<_, UserRecord>(
            "SELECT id, email, display_name, password_hash, created_at, updated_at, state_version
             FROM users WHERE email = ?",
        )
        .bind(email)
        .fetch_optional(&self.pool)
        .await?)
    }

    /// The oldest user, if any.
    pub async fn first_user(&self) -> Result<Option<UserRecord>> {
        Ok(sqlx::query_as::<_, UserRecord>(
            "SELECT id, email, display_name, password_hash, created_at, updated_at, state_version
             FROM users ORDER BY created_at, id LIMIT 1",
        )
        .fetch_optional(&self.pool)
        .await?)
    }

    /// Users by email.
    pub async fn list_users(
        &self,
        limit: u32,
        after: Option<PageToken>,
    ) -> Result<Page<UserRecord>> {
        let after_email = match &after {
            Some(t) => t.part(0)?.to_owned(),
            None => String::new(),
        };
        let rows = sqlx::query_as::<_, UserRecord>(
            "SELECT id, email, display_name, password_hash, created_at, updated_at, state_version
             FROM users WHERE email > ? ORDER BY email LIMIT ?",
        )
        .bind(after_email)
        .bind(i64::from(limit) + 1)
        .fetch_all(&self.pool)
        .await?;
        Ok(paginate(rows, limit, |u| key(&[&u.email])))
    }

    /// Stores a token hash.
    pub async fn insert_token(
        &self,
        user_id: UserId,
        name: &str,
        kind: TokenKind,
        token_hash: &str,
        expires_at: Option<i64>,
    ) -> Result<TokenRecord> {
        let id = TokenId::new();
        let now = now();
        sqlx::query(
            "INSERT INTO api_tokens (id, user_id, name, kind, token_hash, created_at, expires_at)
             VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(id)
        .bind(user_id)
        .bind(name)
        .bind(kind)
        .bind(token_hash)
        .bind(now)
        .bind(expires_at)
        .execute(&self.pool)
        .await?;
        Ok(TokenRecord {
            id,
            user_id,
            name: name.to_owned(),
            kind,
            created_at: now,
            expires_at,
            last_used_at: None,
            revoked_at: None,
        })
    }

    /// The caller owning a valid (not revoked, not expired) token with this hash.
    pub async fn caller_for_token(&self, token_hash: &str) -> Result<Option<Caller>> {
        let now = now();
        let caller = sqlx::query_as::<_, Caller>(
            "SELECT t.user_id, u.email, t.id AS token_id, t.name AS token_name, t.kind, t.last_used_at
             FROM api_tokens t JOIN users u ON u.id = t.user_id
             WHERE t.token_hash = ? AND t.revoked_at IS NULL
               AND (t.expires_at IS NULL OR t.expires_at > ?)",
        )
        .bind(token_hash)
        .bind(now)
        .fetch_optional(&self.pool)
        .await?;
        if let Some(c) = &caller
            && c.last_used_at.is_none_or(|t| now - t > TOUCH_INTERVAL_MS)
        {
            sqlx::query("UPDATE api_tokens SET last_used_at = ? WHERE id = ?")
                .bind(now)
                .bind(c.token_id)
                .execute(&self.pool)
                .await?;
        }
        Ok(caller)
    }

    /// Whether a token still authenticates (not revoked, not expired).
    pub async fn token_is_active(&self, token_id: TokenId) -> Result<bool> {
        let found: Option<(i64,)> = sqlx::query_as(
            "SELECT 1 FROM api_tokens
             WHERE id = ? AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > ?)",
        )
        .bind(token_id)
        .bind(now())
        .fetch_optional(&self.pool)
        .await?;
        Ok(found.is_some())
    }

    /// A user's tokens of one kind, newest first.
    pub async fn list_tokens(
        &self,
        user_id: UserId,
        kind: TokenKind,
        limit: u32,
        after: Option<PageToken>,
    ) -> Result<Page<TokenRecord>> {
        let (before_created, before_id) = match &after {
            Some(t) => (
                t.part(0)?
                    .parse::<i64>()
                    .map_err(|_| invalid_page_token())?,
                t.part(1)?.to_owned(),
            ),
            None => (i64::MAX, String::new()),
        };
        let rows = sqlx::query_as::<_, TokenRecord>(
            "SELECT id, user_id, name, kind, created_at, expires_at, last_used_at, revoked_at
             FROM api_tokens
             WHERE user_id = ? AND kind = ?
               AND (created_at < ? OR (created_at = ? AND id < ?) OR ? = '')
             ORDER BY created_at DESC, id DESC LIMIT ?",
        )
        .bind(user_id)
        .bind(kind)
        .bind(before_created)
        .bind(before_created)
        .bind(&before_id)
        .bind(&before_id)
        .bind(i64::from(limit) + 1)
        .fetch_all(&self.pool)
        .await?;
        Ok(paginate(rows, limit, |t| {
            key(&[&t.created_at.to_string(), &t.id.to_string()])
        }))
    }

    /// Revokes one of the user's tokens (idempotent); NOT_FOUND for another user's token.
    pub async fn revoke_token(&self, user_id: UserId, token_id: TokenId) -> Result<TokenRecord> {
        sqlx::query(
            "UPDATE api_tokens SET revoked_at = COALESCE(revoked_at, ?) WHERE id = ? AND user_id = ?",
        )
        .bind(now())
        .bind(token_id)
        .bind(user_id)
        .execute(&self.pool)
        .await?;
        sqlx::query_as::<_, TokenRecord>(
            "SELECT id, user_id, name, kind, created_at, expires_at, last_used_at, revoked_at
             FROM api_tokens WHERE id = ? AND user_id = ?",
        )
        .bind(token_id)
        .bind(user_id)
        .fetch_optional(&self.pool)
        .await?
        .ok_or_else(|| Error::not_found("api token", &token_id))
    }
}

#[cfg(test)]
mod tests {
    use crate::model::TokenKind;
    use crate::store::test_support::store;

    #[tokio::test]
    async fn tokens_resolve_until_revoked_or_expired() {
        let (store, _dir) = store().await;
        let user = store.create_user("a@b.co", "A", None).await.expect("user");
        assert!(store.create_user("a@b.co", "A", None).await.is_err());
        store
            .insert_token(user.id, "ci", TokenKind::Api, "h1", None)
            .await
            .expect("token");
        store
            .insert_token(user.id, "old", TokenKind::Api, "h2", Some(1))
            .await
            .expect("token");
        let caller = store
            .caller_for_token("h1")
            .await
            .expect("q")
            .expect("valid");
        assert_eq!(caller.email, "a@b.co");
        assert!(
            store.caller_for_token("h2").await.expect("q").is_none(),
            "expired"
        );
        assert!(store.caller_for_token("nope").await.expect("q").is_none());
        store
            .revoke_token(user.id, caller.token_id)
            .await
            .expect("revoke");
        assert!(
            store.caller_for_token("h1").await.expect("q").is_none(),
            "revoked"
        );
        let page = store
            .list_tokens(user.id, TokenKind::Api, 1, None)
            .await
            .expect("list");
        assert_eq!(page.items.len(), 1);
        assert!(!page.next_page_token.is_empty());
    }
}
