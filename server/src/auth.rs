//! Credentials: argon2id password hashes, random bearer tokens stored as SHA-256 hashes, and
//! the login rate limiter.

use std::collections::{HashMap, VecDeque};
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

/// Failed logins one client address may spend across all accounts, in `max_failures` units.
const ADDRESS_BUDGET_FACTOR: usize = 4;
/// Most keys the limiter remembers; at the bound the stalest entry is forgotten.
const MAX_KEYS: usize = 50_000;
/// Password verifications running at once: half the cores (at least one), so a flood of
/// logins leaves the other half to the API (each verification is ~20 MB and a core for tens
/// of milliseconds).
fn hashing_slots() -> usize {
    std::thread::available_parallelism().map_or(1, |n| (n.get() / 2).max(1))
}

/// Slows password guessing without locking the real user out: failures count per client
/// address and per (address, account), attempts still running count as failures until they
/// end (a burst cannot outrun the check), and password hashing runs off the async threads,
/// on at most half the cores. An attacker's address is refused; the account stays open from any other.
#[derive(Debug)]
pub struct LoginLimiter {
    max_failures: usize,
    window: Duration,
    attempts: Mutex<Attempts>,
    hashing: tokio::sync::Semaphore,
}

#[derive(Debug, Default)]
struct Attempts {
    failures: HashMap<String, VecDeque<Instant>>,
    in_flight: HashMap<String, usize>,
}

/// A login attempt admitted by [`LoginLimiter::admit`]; counted until it ends.
#[derive(Debug)]
pub struct Admitted<'a> {
    limiter: &'a LoginLimiter,
    keys: [String; 2],
}

impl LoginLimiter {
    pub fn new(max_failures: u32, window: Duration) -> Self {
        Self {
            max_failures: max_failures as usize,
            window,
            attempts: Mutex::new(Attempts::default()),
            hashing: tokio::sync::Semaphore::new(hashing_slots()),
        }
    }

    fn attempts(&self) -> std::sync::MutexGuard<'_, Attempts> {
        self.attempts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Admits an attempt from `address` for `account`, or errors with RESOURCE_EXHAUSTED while
    /// the address, or the address for this account, is over its budget.
    pub fn admit(&self, address: &str, account: &str) -> Result<Admitted<'_>> {
        let now = Instant::now();
        let keys = [format!("a {address}"), format!("p {address} {account}")];
        let budgets = [self.max_failures * ADDRESS_BUDGET_FACTOR, self.max_failures];
        let mut attempts = self.attempts();
        let mut wait = Duration::ZERO;
        for (key, budget) in keys.iter().zip(budgets) {
            let (count, oldest) = match attempts.failures.get_mut(key) {
                Some(recent) => {
                    while recent
                        .front()
                        .is_some_and(|t| now.duration_since(*t) >= self.window)
                    {
                        recent.pop_front();
                    }
                    (recent.len(), recent.front().copied())
                }
                None => (0, None),
            };
            let running = attempts.in_flight.get(key).copied().unwrap_or(0);
            if count + running >= budget {
                let since = oldest.map_or(Duration::ZERO, |t| now.duration_since(t));
                wait = wait.max(self.window.saturating_sub(since));
            }
        }
        if !wait.is_zero() {
            return Err(Error::RateLimited {
                retry_after_secs: wait.as_secs().max(1),
            });
        }
        for key in &keys {
            *attempts.in_flight.entry(key.clone()).or_default() += 1;
        }
        Ok(Admitted {
            limiter: self,
            keys,
        })
    }

    /// Runs a password verification on the blocking pool, on at most half the cores.
    pub async fn verify(&self, password: &str, hash: Option<&str>) -> bool {
        let Ok(_slot) = self.hashing.acquire().await else {
            return false;
        };
        let password = password.to_owned();
        let hash = hash.map(str::to_owned);
        tokio::task::spawn_blocking(move || {
            if let Some(hash) = hash {
                verify_password(&password, &hash)
            } else {
                verify_dummy(&password);
                false
            }
        })
        .await
        .unwrap_or(false)
    }

    fn remember_failure(&self, keys: &[String; 2]) {
        let now = Instant::now();
        let mut attempts = self.attempts();
        for key in keys {
            if !attempts.failures.contains_key(key) && attempts.failures.len() >= MAX_KEYS {
                attempts.forget_stalest(now, self.window);
            }
            attempts
                .failures
                .entry(key.clone())
                .or_default()
                .push_back(now);
        }
    }

    /// How many keys are remembered (for tests of the bound).
    pub fn remembered(&self) -> usize {
        self.attempts().failures.len()
    }
}

impl Attempts {
    /// Makes room: drops expired entries, or else the tenth whose last failures are oldest
    /// (never everyone at once; one pass buys room for many new keys).
    fn forget_stalest(&mut self, now: Instant, window: Duration) {
        self.failures.retain(|_, recent| {
            recent
                .back()
                .is_some_and(|t| now.duration_since(*t) < window)
        });
        if self.failures.len() < MAX_KEYS {
            return;
        }
        let mut by_age: Vec<(Option<Instant>, String)> = self
            .failures
            .iter()
            .map(|(key, recent)| (recent.back().copied(), key.clone()))
            .collect();
        let cut = MAX_KEYS / 10;
        by_age.select_nth_unstable_by_key(cut, |(last, _)| *last);
        for (_, key) in &by_age[..cut] {
            self.failures.remove(key);
        }
    }
}

impl Admitted<'_> {
    /// A wrong password: counts against the address and the (address, account) pair.
    pub fn failed(self) {
        self.limiter.remember_failure(&self.keys);
    }

    /// A successful login clears the pair's failures (not the address's).
    pub fn succeeded(self) {
        self.limiter.attempts().failures.remove(&self.keys[1]);
    }
}

impl Drop for Admitted<'_> {
    fn drop(&mut self) {
        let mut attempts = self.limiter.attempts();
        for key in &self.keys {
            if let Some(running) = attempts.in_flight.get_mut(key) {
                *running = running.saturating_sub(1);
                if *running == 0 {
                    attempts.in_flight.remove(key);
                }
            }
        }
    }
}

/// Exchanges email and password for a session token. Unknown emails and wrong passwords get
/// the same answer after the same work; failures count against the rate limit of the
/// client's `address` and are audited.
pub async fn login(
    store: &Store,
    limiter: &LoginLimiter,
    session_ttl: Duration,
    address: &str,
    email: &str,
    password: &str,
) -> Result<(Secret, TokenRecord, UserRecord)> {
    let key = email.to_ascii_lowercase();
    let attempt = limiter.admit(address, &key)?;
    let user = store.user_by_email(&key).await?;
    let hash = user.as_ref().and_then(|u| u.password_hash.as_deref());
    let verified = limiter.verify(password, hash).await && hash.is_some();
    let Some(user) = user.filter(|_| verified) else {
        attempt.failed();
        store
            .record_audit(&AuditEntry {
                actor: key.clone(),
                action: "auth.login".to_owned(),
                resource_type: "user",
                resource_id: String::new(),
                result: AuditResult::Denied,
                detail: format!("invalid email or password (from {address})"),
                job_id: None,
            })
            .await?;
        return Err(Error::Unauthenticated("invalid email or password"));
    };
    attempt.succeeded();
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
            detail: format!("from {address}"),
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
    fn an_address_is_refused_after_its_failures_and_the_account_stays_open_elsewhere() {
        let limiter = LoginLimiter::new(2, Duration::from_mins(1));
        limiter.admit("203.0.113.9", "a").expect("first").failed();
        limiter.admit("203.0.113.9", "a").expect("second").failed();
        assert!(matches!(
            limiter.admit("203.0.113.9", "a"),
            Err(Error::RateLimited { .. })
        ));
        // The account from another address, another account from the same address.
        limiter
            .admit("198.51.100.7", "a")
            .expect("other address")
            .succeeded();
        limiter
            .admit("203.0.113.9", "b")
            .expect("other account")
            .failed();
    }

    #[test]
    fn attempts_still_running_count_so_a_burst_cannot_outrun_the_check() {
        let limiter = LoginLimiter::new(2, Duration::from_mins(1));
        let first = limiter.admit("x", "a").expect("first");
        let second = limiter.admit("x", "a").expect("second");
        assert!(matches!(
            limiter.admit("x", "a"),
            Err(Error::RateLimited { .. })
        ));
        drop(first);
        second.succeeded();
        limiter
            .admit("x", "a")
            .expect("both ended, the success cleared the pair");
    }

    #[test]
    fn spraying_accounts_from_one_address_hits_the_address_budget() {
        let limiter = LoginLimiter::new(2, Duration::from_mins(1));
        for n in 0..8 {
            limiter
                .admit("x", &format!("user{n}"))
                .expect("within budget")
                .failed();
        }
        assert!(matches!(
            limiter.admit("x", "new"),
            Err(Error::RateLimited { .. })
        ));
        limiter.admit("y", "new").expect("another address");
    }

    #[test]
    fn memory_is_bounded_without_forgetting_everyone() {
        let limiter = LoginLimiter::new(1, Duration::from_mins(1));
        limiter.admit("attacker", "a").expect("first").failed();
        for n in 0..MAX_KEYS {
            limiter
                .admit(&format!("10.{n}"), "a")
                .expect("new address")
                .failed();
        }
        assert!(limiter.remembered() <= MAX_KEYS);
        // The newest entries are remembered: the last address is still refused.
        let last = format!("10.{}", MAX_KEYS - 1);
        assert!(matches!(
            limiter.admit(&last, "a"),
            Err(Error::RateLimited { .. })
        ));
    }
}
