//! What a playbook reports back (`pressluft_result`) is read from a node whose files and
//! database a tenant may control: a plugin header, a release directory name, a version
//! string. Before any of it is stored, shown or handed to a later job it is brought into a
//! bounded shape here, once for every job type: nesting, sizes and string lengths capped,
//! control characters (terminal escapes included) removed. Job-specific readers then check
//! the fields they use (release names, sizes, checksums) on top of this.

use serde_json::{Map, Value};

use super::drift::DriftItem;
use super::{BackupId, JobKind, ReleaseSourceKind};

/// What a playbook reported (`pressluft_result`), read once, by job type, and checked: the
/// only place a report is read by key. Parts the job's type does not report stay empty.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct JobReport {
    /// The playbook put everything back before it failed: a retry would repeat the failure.
    pub rolled_back: bool,
    /// The failure's name (e.g. `ACME_FAILED`): upper case and underscores, 1 to 40 long.
    pub error_code: Option<String>,
    /// A release the job built (healthy, or the unhealthy one a failed deploy left).
    pub release: Option<ReleaseReport>,
    /// An existing release the job switched to (rollbacks).
    pub current_release: Option<String>,
    /// Releases the job removed from the node.
    pub pruned: Vec<String>,
    /// Production's fingerprint, the new drift baseline (clone, promotion).
    pub baseline: Option<Value>,
    /// What a drift check (or a promotion's gate) found drifted.
    pub drift_items: Option<Vec<DriftItem>>,
    /// The caches now on: (page, object).
    pub caches: Option<(bool, bool)>,
    /// What a domain job did.
    pub domain: Option<DomainReport>,
    /// PHP versions a provisioned node has.
    pub php_versions: Option<Vec<String>>,
    /// The object a backup job stored.
    pub backup: Option<StoredBackup>,
    /// The object the pre-change backup of a restore, promotion or update stored.
    pub pre_backup: Option<StoredBackup>,
    /// Backups a cleanup deleted from storage.
    pub deleted_backups: Vec<BackupId>,
}

/// A release reported by a playbook (`release`).
#[derive(Debug, Clone, PartialEq)]
pub struct ReleaseReport {
    pub name: String,
    pub source_kind: ReleaseSourceKind,
    /// Where the code came from, as recorded (bounded by [`clean_report`]).
    pub source: Value,
    pub resolved_ref: String,
    pub healthy: bool,
}

/// A domain job's report (`domain`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DomainReport {
    /// When the certificate expires (unix seconds).
    pub expires_at: Option<i64>,
    /// Why no certificate was obtained (at most 400 characters).
    pub error: String,
}

/// A backup object as the node stored it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoredBackup {
    pub object_key: String,
    pub size_bytes: i64,
    pub sha256: String,
}

impl JobReport {
    /// The report of a `kind` job from what its playbook set (`raw` is cleaned first).
    pub fn parse(kind: JobKind, raw: &Value) -> Self {
        let raw = clean_report(raw);
        let flag = |name: &str| raw.get(name).and_then(Value::as_bool);
        let mut report = Self {
            rolled_back: flag("rolled_back") == Some(true),
            error_code: raw
                .get("error_code")
                .and_then(Value::as_str)
                .filter(|c| is_error_code(c))
                .map(str::to_owned),
            ..Self::default()
        };
        match kind {
            JobKind::NodeProvision => {
                report.php_versions = raw.get("php_versions").and_then(Value::as_array).map(|v| {
                    v.iter()
                        .filter_map(Value::as_str)
                        .filter(|v| is_php_version(v))
                        .map(str::to_owned)
                        .collect()
                });
            }
            JobKind::BackupCreate => report.backup = stored_backup(&raw),
            JobKind::BackupCleanup => {
                report.deleted_backups = strings(raw.get("deleted"))
                    .filter_map(|s| s.parse().ok())
                    .collect();
            }
            JobKind::DriftCheck => report.drift_items = drift_items(&raw),
            JobKind::EnvCacheToggle => report.caches = flag("page_cache").zip(flag("object_cache")),
            JobKind::DomainAdd | JobKind::DomainRemove => {
                report.domain = raw.get("domain").map(domain_report);
            }
            JobKind::ReleaseRollback => {
                report.current_release = raw
                    .get("current_release")
                    .and_then(Value::as_str)
                    .filter(|n| is_release_name(n))
                    .map(str::to_owned);
            }
            _ => {}
        }
        if matches!(
            kind,
            JobKind::SiteCreate | JobKind::EnvCreate | JobKind::EnvDeploy | JobKind::EnvUpdate
        ) || kind == JobKind::EnvPromote
        {
            report.release = raw.get("release").and_then(release_report);
        }
        if kind == JobKind::EnvDeploy {
            report.pruned = strings(raw.get("pruned"))
                .filter(|n| is_release_name(n))
                .map(str::to_owned)
                .collect();
        }
        if matches!(kind, JobKind::EnvCreate | JobKind::EnvPromote) {
            report.baseline = raw.get("baseline").filter(|b| b.is_object()).cloned();
        }
        if kind == JobKind::EnvPromote {
            // A promotion refused for drift says what drifted.
            report.drift_items = drift_items(&raw);
        }
        if matches!(
            kind,
            JobKind::EnvRestore | JobKind::EnvPromote | JobKind::EnvUpdate
        ) {
            report.pre_backup = raw.get("pre_backup").and_then(stored_backup);
        }
        report
    }
}

fn strings(value: Option<&Value>) -> impl Iterator<Item = &str> {
    value
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
}

fn is_error_code(code: &str) -> bool {
    (1..=40).contains(&code.len()) && code.bytes().all(|b| b.is_ascii_uppercase() || b == b'_')
}

fn is_php_version(v: &str) -> bool {
    let mut parts = v.split('.');
    let ok = |p: Option<&str>| {
        p.is_some_and(|p| (1..=2).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_digit()))
    };
    ok(parts.next()) && ok(parts.next()) && parts.next().is_none()
}

/// Whether a name a playbook reported can be a release directory (it ends up in paths).
pub fn is_release_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

fn release_report(r: &Value) -> Option<ReleaseReport> {
    Some(ReleaseReport {
        name: r
            .get("name")?
            .as_str()
            .filter(|n| is_release_name(n))?
            .to_owned(),
        source_kind: r.get("source_kind")?.as_str()?.parse().ok()?,
        source: r.get("source").cloned().unwrap_or(Value::Null),
        resolved_ref: r
            .get("resolved_ref")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .chars()
            .take(200)
            .collect(),
        healthy: r.get("healthy").and_then(Value::as_bool).unwrap_or(true),
    })
}

fn drift_items(raw: &Value) -> Option<Vec<DriftItem>> {
    Some(
        raw.get("items")?
            .as_array()?
            .iter()
            .filter_map(DriftItem::from_report)
            .collect(),
    )
}

fn domain_report(d: &Value) -> DomainReport {
    DomainReport {
        expires_at: d.get("expires_at").and_then(|e| {
            // Jinja may hand the number over as a string.
            e.as_i64().or_else(|| e.as_str()?.trim().parse().ok())
        }),
        error: d
            .get("error")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .chars()
            .take(400)
            .collect(),
    }
}

/// A backup object: its key must be a relative path without `..` and its checksum hex.
fn stored_backup(b: &Value) -> Option<StoredBackup> {
    let key = b.get("object_key")?.as_str()?;
    let key_ok = (1..=1024).contains(&key.len())
        && !key.starts_with('/')
        && key.split('/').all(|part| part != "..")
        && key
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'-' | b'/'));
    let sha = b.get("sha256").and_then(Value::as_str).unwrap_or_default();
    let sha_ok = sha.len() == 64 && sha.bytes().all(|c| c.is_ascii_hexdigit());
    (key_ok && sha_ok).then(|| StoredBackup {
        object_key: key.to_owned(),
        size_bytes: b
            .get("size_bytes")
            .and_then(Value::as_i64)
            .filter(|s| *s >= 0)
            .unwrap_or(0),
        sha256: sha.to_ascii_lowercase(),
    })
}

/// Deepest nesting kept; deeper values become null.
const MAX_DEPTH: usize = 8;
/// Longest string kept, in characters (a drift fingerprint's hashes are short).
const MAX_STRING: usize = 4096;
/// Most items kept of one array or object.
const MAX_ITEMS: usize = 20_000;

/// `report` in a bounded, printable shape.
pub fn clean_report(report: &Value) -> Value {
    clean(report, 0)
}

fn clean(value: &Value, depth: usize) -> Value {
    if depth > MAX_DEPTH {
        return Value::Null;
    }
    match value {
        Value::String(text) => Value::String(clean_text(text)),
        Value::Array(items) => Value::Array(
            items
                .iter()
                .take(MAX_ITEMS)
                .map(|item| clean(item, depth + 1))
                .collect(),
        ),
        Value::Object(map) => {
            let mut cleaned = Map::new();
            for (key, item) in map.iter().take(MAX_ITEMS) {
                cleaned.insert(clean_text(key), clean(item, depth + 1));
            }
            Value::Object(cleaned)
        }
        Value::Null | Value::Bool(_) | Value::Number(_) => value.clone(),
    }
}

/// `text` without control characters (newlines and tabs become spaces), at most
/// [`MAX_STRING`] characters.
pub fn clean_text(text: &str) -> String {
    text.chars()
        .take(MAX_STRING)
        .filter_map(|c| match c {
            '\n' | '\t' | '\r' => Some(' '),
            c if c.is_control() => None,
            // Bidirectional overrides make text read differently than it is.
            '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' => None,
            c => Some(c),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_report_is_read_by_its_job_type_only() {
        let raw = json!({
            "rolled_back": true,
            "error_code": "ACME_FAILED",
            "php_versions": ["8.2", "8.3; rm -rf /", "../8"],
            "release": {"name": "0192-abc", "source_kind": "git", "resolved_ref": "abc"},
            "pruned": ["0190-old", "../../etc", ".hidden"],
            "current_release": "0191-x",
        });
        let provision = JobReport::parse(JobKind::NodeProvision, &raw);
        assert_eq!(provision.php_versions, Some(vec!["8.2".to_owned()]));
        assert!(provision.rolled_back);
        assert_eq!(provision.error_code.as_deref(), Some("ACME_FAILED"));
        assert_eq!(provision.release, None, "a provisioning builds no release");
        let deploy = JobReport::parse(JobKind::EnvDeploy, &raw);
        assert_eq!(
            deploy.release.as_ref().map(|r| r.name.as_str()),
            Some("0192-abc")
        );
        assert_eq!(deploy.pruned, ["0190-old"]);
        assert_eq!(
            deploy.current_release, None,
            "only a rollback switches by name"
        );
        let rollback = JobReport::parse(JobKind::ReleaseRollback, &raw);
        assert_eq!(rollback.current_release.as_deref(), Some("0191-x"));
    }

    #[test]
    fn hostile_reports_are_refused_part_by_part() {
        let raw = json!({
            "error_code": "x; DROP",
            "release": {"name": "../../root", "source_kind": "git"},
            "object_key": "/etc/shadow", "sha256": "ab".repeat(32), "size_bytes": -5,
            "deleted": ["not-an-id", BackupId::new().to_string()],
            "domain": {"expires_at": "1700000000", "error": "e\u{1b}[2J".repeat(300)},
            "pre_backup": {"object_key": "a/../../b.tar", "sha256": "ab".repeat(32)},
        });
        let report = JobReport::parse(JobKind::EnvDeploy, &raw);
        assert_eq!(report.error_code, None);
        assert_eq!(report.release, None);
        assert_eq!(JobReport::parse(JobKind::BackupCreate, &raw).backup, None);
        assert_eq!(JobReport::parse(JobKind::EnvRestore, &raw).pre_backup, None);
        assert_eq!(
            JobReport::parse(JobKind::BackupCleanup, &raw)
                .deleted_backups
                .len(),
            1
        );
        let domain = JobReport::parse(JobKind::DomainAdd, &raw)
            .domain
            .expect("domain");
        assert_eq!(domain.expires_at, Some(1_700_000_000));
        assert!(domain.error.chars().count() <= 400 && !domain.error.contains('\u{1b}'));
        let good = json!({"object_key": "p/shop/production/1.tar", "size_bytes": 10,
                          "sha256": "AB".repeat(32)});
        assert_eq!(
            JobReport::parse(JobKind::BackupCreate, &good).backup,
            Some(StoredBackup {
                object_key: "p/shop/production/1.tar".into(),
                size_bytes: 10,
                sha256: "ab".repeat(32),
            })
        );
    }

    #[test]
    fn strings_lose_control_characters_and_are_capped() {
        assert_eq!(clean_text("Akismet\u{1b}[2J\u{7}"), "Akismet[2J");
        assert_eq!(clean_text("a\nb\tc"), "a b c");
        assert_eq!(clean_text("\u{202e}gnp.exe"), "gnp.exe");
        assert_eq!(clean_text(&"x".repeat(10_000)).len(), MAX_STRING);
    }

    #[test]
    fn shapes_are_bounded_and_ordinary_reports_pass_unchanged() {
        let ordinary = json!({
            "release": {"name": "0192-abc", "source_kind": "wordpress", "healthy": true},
            "size": 12345,
            "items": [{"kind": "option", "name": "blogname", "hash": "ab12"}],
        });
        assert_eq!(clean_report(&ordinary), ordinary);
        let mut deep = json!("bottom");
        for _ in 0..20 {
            deep = json!({ "d": deep });
        }
        let cleaned = clean_report(&deep);
        let mut level = &cleaned;
        let mut depth = 0;
        while let Some(next) = level.get("d") {
            level = next;
            depth += 1;
        }
        assert!(depth <= MAX_DEPTH + 1, "{depth}");
        let wide = Value::Array(vec![json!(1); MAX_ITEMS + 5]);
        assert_eq!(
            clean_report(&wide).as_array().map(Vec::len),
            Some(MAX_ITEMS)
        );
        assert_eq!(
            clean_report(&json!({"k\u{0}ey": "v\u{1b}"})),
            json!({"key": "v"})
        );
    }
}
