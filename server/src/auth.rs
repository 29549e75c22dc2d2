//! Credentials: argon2id password hashes, random bearer tokens stored as SHA-256 hashes, and
//! the login rate limiter.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use rand::RngCore as _;
use sha2::{Digest as _, Sha256};

use crate::error::{Error, Result};
use crate::model::validate::Invalid;
use crate::model::{AuditResult, TokenKind, UserId, now_ms};
use crate::secrets::Secret;
use crate::store::{AuditEntry, Store, TokenRecord, UserRecord};

/// Prefix of every bearer token, so secret scanners can recognise leaked ones.
pub const TOKEN_PREFIX: &str = "plt_";

/// Minimum password length for new users.
pub const MIN_PASSWORD_LEN: usize = 12;

/// Hashes a password with argon2id and a random salt (PHC string).
pub fn hash_password(password: &Secret) -> Result<String> {
    let salt = SaltString::generate(&mut rand::rngs::OsRng);
    Argon2::default()
        .hash_password(password.expose().as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| Error::internal(format!("hashing a password: {e}")))
}

/// Checks a password against a PHC string; false for a malformed hash.
pub fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|parsed| {
        Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    })
}

/// Spends the time of one verification, so unknown emails answer as slowly as wrong passwords.
pub fn verify_dummy(password: &str) {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let hash =
        DUMMY.get_or_init(|| hash_password(&Secret::new("dummy-password")).unwrap_or_default());
    let _ = verify_password(password, hash);
}

/// A new random bearer token: the secret (shown once) and its hash (stored).
pub fn new_token() -> (Secret, String) {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let secret = format!("{TOKEN_PREFIX}{}", B64.encode(bytes));
    let hash = token_hash(&secret);
    (Secret::new(secret), hash)
}

/// The stored form of a token: hex SHA-256. Tokens carry 256 random bits, so a fast hash is
/// enough (no dictionary to attack).
pub fn token_hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// Refuses logins for an email after too many recent failures.
#[derive(Debug)]
pub struct LoginLimiter {
    max_failures: usize,
    window: Duration,
    failures: Mutex<HashMap<String, Vec<Instant>>>,
}

impl LoginLimiter {
    pub fn new(max_failures: u32, window: Duration) -> Self {
        Self {
            max_failures: max_failures as usize,
            window,
            failures: Mutex::new(HashMap::new()),
        }
    }

    /// Errors with RESOURCE_EXHAUSTED while `key` is over its failure budget.
    pub fn check(&self, key: &str) -> Result<()> {
        let now = Instant::now();
        let mut failures = self
            .failures
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let recent = failures.entry(key.to_owned()).or_default();
        recent.retain(|t| now.duration_since(*t) < self.window);
        if recent.len() >= self.max_failures {
            let oldest = recent.first().copied().unwrap_or(now);
            let retry = self.window.saturating_sub(now.duration_since(oldest));
            return Err(Error::RateLimited {
                retry_after_secs: retry.as_secs().max(1),
            });
        }
        Ok(())
    }

    /// Counts a failed attempt.
    pub fn record_failure(&self, key: &str) {
        let mut failures = self
            .failures
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // Bound memory: forget everyone once the map grows large.
        if failures.len() > 10_000 {
            failures.clear();
        }
        failures
            .entry(key.to_owned())
            .or_default()
            .push(Instant::now());
    }

    /// Forgets failures after a successful login.
    pub fn record_success(&self, key: &str) {
        self.failures
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(key);
    }
}

/// Exchanges email and password for a session token. Unknown emails and wrong passwords get
/// the same answer after the same work; failures count against the rate limit and are audited.
pub async fn login(
    store: &Store,
    limiter: &LoginLimiter,
    session_ttl: Duration,
    email: &str,
    password: &str,
) -> Result<(Secret, TokenRecord, UserRecord)> {
    let key = email.to_ascii_lowercase();
    limiter.check(&key)?;
    let user = store.user_by_email(&key).await?;
    let verified = if let Some(hash) = user.as_ref().and_then(|u| u.password_hash.as_deref()) {
        verify_password(password, hash)
    } else {
        verify_dummy(password);
        false
    };
    let Some(user) = user.filter(|_| verified) else {
        limiter.record_failure(&key);
        store
            .record_audit(&AuditEntry {
                actor: key.clone(),
                action: "auth.login".to_owned(),
                resource_type: "user",
                resource_id: String::new(),
                result: AuditResult::Denied,
                detail: "invalid email or password".to_owned(),
                job_id: None,
            })
            .await?;
        return Err(Error::Unauthenticated("invalid email or password"));
    };
    limiter.record_success(&key);
    let (secret, hash) = new_token();
    let expires = now_ms() + i64::try_from(session_ttl.as_millis()).unwrap_or(i64::MAX / 2);
    let token = store
        .insert_token(user.id, "login", TokenKind::Session, &hash, Some(expires))
        .await?;
    store
        .record_audit(&AuditEntry {
            actor: user.email.clone(),
            action: "auth.login".to_owned(),
            resource_type: "user",
            resource_id: user.id.to_string(),
            result: AuditResult::Succeeded,
            detail: String::new(),
            job_id: None,
        })
        .await?;
    Ok((secret, token, user))
}

/// Creates a user after checking the password policy.
pub async fn create_user(
    store: &Store,
    email: &str,
    display_name: &str,
    password: Option<&Secret>,
) -> Result<UserRecord> {
    let hash = match password {
        Some(p) => Some(checked_hash(p)?),
        None => None,
    };
    store
        .create_user(email, display_name, hash.as_deref())
        .await
}

/// Sets a user's password (the policy checked first) and ends their sessions; API tokens
/// stay valid. Returns how many sessions ended.
pub async fn set_password(store: &Store, user: UserId, password: &Secret) -> Result<u64> {
    let hash = checked_hash(password)?;
    store.set_password(user, &hash).await
}

fn checked_hash(password: &Secret) -> Result<String> {
    if password.expose().chars().count() < MIN_PASSWORD_LEN {
        return Err(Error::Invalid(Invalid {
            field: "password",
            message: format!("must be at least {MIN_PASSWORD_LEN} characters"),
        }));
    }
    hash_password(password)
}

/// Creates an API token for `user`; the secret is returned once and stored only hashed.
pub async fn create_api_token(
    store: &Store,
    user: UserId,
    name: &str,
    ttl: Option<Duration>,
) -> Result<(Secret, TokenRecord)> {
    let (secret, hash) = new_token();
    let expires =
        ttl.map(|t| now_ms().saturating_add(i64::try_from(t.as_millis()).unwrap_or(i64::MAX / 2)));
    let token = store
        .insert_token(user, name, TokenKind::Api, &hash, expires)
        .await?;
    Ok((secret, token))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_hash_and_verify() {
        let hash = hash_password(&Secret::new("correct horse battery")).expect("hash");
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify_password("correct horse battery", &hash));
        assert!(!verify_password("wrong", &hash));
        assert!(!verify_password("x", "not a hash"));
    }

    #[test]
    fn tokens_are_random_and_hashed() {
        let (a, ha) = new_token();
        let (b, hb) = new_token();
        assert_ne!(a.expose(), b.expose());
        assert!(a.expose().starts_with(TOKEN_PREFIX));
        assert_eq!(token_hash(a.expose()), ha);
        assert_ne!(ha, hb);
        assert!(!ha.contains(a.expose()));
    }

    #[test]
    fn limiter_blocks_after_max_failures() {
        let limiter = LoginLimiter::new(2, Duration::from_mins(1));
        limiter.check("a").expect("ok");
        limiter.record_failure("a");
        limiter.record_failure("a");
        assert!(matches!(limiter.check("a"), Err(Error::RateLimited { .. })));
        limiter.check("b").expect("other keys unaffected");
        limiter.record_success("a");
        limiter.check("a").expect("reset");
    }
}
