//! Custom domains: the rules as plain functions (which names a domain brings, what an
//! environment's server block serves before, during and after a change, the site's address,
//! when a certificate needs attention), the DNS check at the API edge, and the periodic
//! certificate check that reads each node's certificate state.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Duration;

use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::error::{Error, Reason, Result};
use crate::model::TlsStatus;
use crate::queries::{NodeCertificate, NodeQueries};
use crate::store::{DomainRecord, DomainTlsUpdate};

/// A certificate this close to expiry means renewals (which start 30 days ahead) are failing.
pub const EXPIRY_WARNING: Duration = Duration::from_hours(14 * 24);

/// How long the DNS check waits for the resolver.
const DNS_TIMEOUT: Duration = Duration::from_secs(5);

/// One domain as the `vhost` role serves it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VhostDomain {
    pub hostname: String,
    /// The hostname first, then its aliases (all on one certificate).
    pub names: Vec<String>,
    pub primary: bool,
    /// It has a certificate (served on 443); without one only its ACME challenge is answered.
    pub tls: bool,
}

/// What a domain job changes.
#[derive(Debug, Clone, Copy)]
pub enum Change<'a> {
    /// Obtain a certificate for `domain` and serve it (as the primary when `make_primary`).
    Add {
        domain: &'a DomainRecord,
        make_primary: bool,
    },
    /// Stop serving `domain`.
    Remove { domain: &'a DomainRecord },
}

/// The server blocks a domain job writes, and the site's address once it is done.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Plan {
    /// While the certificate is requested: what is served now plus the new name's challenge.
    pub issuing: Vec<VhostDomain>,
    /// Once the job succeeded.
    pub after: Vec<VhostDomain>,
    /// The site's URL once the job succeeded.
    pub url_after: String,
}

/// The www/apex counterpart of a hostname: `www.example.com` for `example.com` and the reverse.
pub fn alias_candidate(hostname: &str) -> Option<String> {
    match hostname.strip_prefix("www.") {
        Some(rest) if rest.contains('.') => Some(rest.to_owned()),
        Some(_) => None,
        None => Some(format!("www.{hostname}")),
    }
}

/// The domains an environment's server block serves: those with a certificate (a domain whose
/// first certificate failed is not served; one whose renewal failed still is, until it expires).
pub fn served(domains: &[DomainRecord]) -> Vec<VhostDomain> {
    domains
        .iter()
        .filter(|d| d.tls_expires_at.is_some())
        .map(|d| VhostDomain {
            hostname: d.hostname.clone(),
            names: d.names(),
            primary: d.is_primary,
            tls: true,
        })
        .collect()
}

/// The site's address with these domains served: the primary domain over HTTPS, else the
/// preview URL.
pub fn site_url(served: &[VhostDomain], preview_url: &str) -> String {
    served.iter().find(|d| d.primary && d.tls).map_or_else(
        || preview_url.to_owned(),
        |d| format!("https://{}", d.hostname),
    )
}

/// What `change` does to an environment whose live domains are `domains`.
pub fn plan(domains: &[DomainRecord], preview_url: &str, change: Change<'_>) -> Plan {
    let now = served(domains);
    match change {
        Change::Add {
            domain,
            make_primary,
        } => {
            let others: Vec<VhostDomain> = now
                .iter()
                .filter(|d| d.hostname != domain.hostname)
                .cloned()
                .collect();
            let was = now.iter().find(|d| d.hostname == domain.hostname);
            let mut issuing = others.clone();
            issuing.push(VhostDomain {
                hostname: domain.hostname.clone(),
                names: domain.names(),
                primary: was.is_some_and(|d| d.primary),
                tls: was.is_some(),
            });
            let mut after: Vec<VhostDomain> = others
                .into_iter()
                .map(|d| VhostDomain {
                    primary: d.primary && !make_primary,
                    ..d
                })
                .collect();
            after.push(VhostDomain {
                hostname: domain.hostname.clone(),
                names: domain.names(),
                primary: make_primary || was.is_some_and(|d| d.primary),
                tls: true,
            });
            let url_after = site_url(&after, preview_url);
            Plan {
                issuing,
                after,
                url_after,
            }
        }
        Change::Remove { domain } => {
            let after: Vec<VhostDomain> = now
                .into_iter()
                .filter(|d| d.hostname != domain.hostname)
                .collect();
            Plan {
                issuing: Vec::new(),
                url_after: site_url(&after, preview_url),
                after,
            }
        }
    }
}

/// Whether a certificate expiring at `expires_at` needs attention at `now` (both ms).
pub fn expires_soon(expires_at: Option<i64>, now: i64) -> bool {
    let warning = i64::try_from(EXPIRY_WARNING.as_millis()).unwrap_or(i64::MAX);
    expires_at.is_some_and(|at| at.saturating_sub(now) < warning)
}

/// Checks that `hostname` resolves to the node's public IP, with an error that says what to do.
pub async fn check_dns(hostname: &str, node_ip: &str) -> Result<()> {
    let Ok(expected) = node_ip.parse::<IpAddr>() else {
        return Err(Error::precondition(
            Reason::DnsMismatch,
            "the node has no public IP on record: set it with UpdateNode, or pass skip_dns_check \
             for a private setup",
        ));
    };
    let lookup = tokio::time::timeout(DNS_TIMEOUT, tokio::net::lookup_host((hostname, 443))).await;
    let addresses: Vec<IpAddr> = match lookup {
        Ok(Ok(found)) => found.map(|a| a.ip()).collect(),
        Ok(Err(_)) | Err(_) => Vec::new(),
    };
    if addresses.contains(&expected) {
        return Ok(());
    }
    let found = if addresses.is_empty() {
        "does not resolve".to_owned()
    } else {
        let mut list: Vec<String> = addresses.iter().map(ToString::to_string).collect();
        list.sort();
        list.dedup();
        format!("resolves to {}", list.join(", "))
    };
    Err(Error::precondition(
        Reason::DnsMismatch,
        format!(
            "{hostname} {found}, not to the node's public IP {expected}: point its A/AAAA record \
             at {expected} and try again once DNS has updated (or pass skip_dns_check for a \
             private setup)"
        ),
    ))
}

/// Whether `hostname` resolves to the node (for the optional www/apex alias; never an error).
pub async fn resolves_to(hostname: &str, node_ip: &str) -> bool {
    check_dns(hostname, node_ip).await.is_ok()
}

/// The certificate state to record for each of a node's served domains, from what the node
/// reports. Domains in the middle of a job (`pending`) are left to the job.
pub fn reconcile(domains: &[DomainRecord], certs: &[NodeCertificate]) -> Vec<DomainTlsUpdate> {
    let by_name: HashMap<&str, &NodeCertificate> =
        certs.iter().map(|c| (c.name.as_str(), c)).collect();
    domains
        .iter()
        .filter(|d| d.tls_status != TlsStatus::Pending && d.tls_expires_at.is_some())
        .map(|d| match by_name.get(d.hostname.as_str()) {
            Some(cert) if cert.ok => DomainTlsUpdate {
                id: d.id,
                status: TlsStatus::Active,
                expires_at: cert.expires_at.or(d.tls_expires_at),
                message: String::new(),
            },
            Some(cert) => DomainTlsUpdate {
                id: d.id,
                status: TlsStatus::Failed,
                expires_at: cert.expires_at.or(d.tls_expires_at),
                message: format!("renewal failed: {}", cert.error),
            },
            None => DomainTlsUpdate {
                id: d.id,
                status: TlsStatus::Failed,
                expires_at: d.tls_expires_at,
                message: "the node has no certificate for this domain".into(),
            },
        })
        .collect()
}

/// Reads every node's certificate state once and records it; one node failing never stops the
/// others (it is logged and tried again next round).
pub async fn check_certificates(queries: &NodeQueries) -> Result<usize> {
    let store = &queries.store;
    let mut checked = 0;
    for (node_id, domains) in store.served_domains_by_node().await? {
        match crate::queries::certificates(queries, node_id).await {
            Ok(certs) => {
                let updates = reconcile(&domains, &certs);
                checked += updates.len();
                store.record_certificate_check(&updates).await?;
            }
            Err(e) => {
                tracing::warn!(node.id = %node_id, error = %e, "certificate check failed");
            }
        }
    }
    Ok(checked)
}

/// The periodic certificate check (every `interval`, first right after start).
pub async fn certificate_checks(
    queries: NodeQueries,
    interval: std::time::Duration,
    shutdown: CancellationToken,
) {
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = tick.tick() => {
                if let Err(e) = check_certificates(&queries).await {
                    tracing::warn!(error = %e, "certificate check failed");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{DomainId, EnvironmentId};

    fn domain(host: &str, primary: bool, cert: bool, aliases: &[&str]) -> DomainRecord {
        DomainRecord {
            id: DomainId::new(),
            environment_id: EnvironmentId::new(),
            hostname: host.into(),
            aliases: serde_json::to_string(aliases).expect("aliases serialize"),
            is_primary: primary,
            tls_status: if cert {
                TlsStatus::Active
            } else {
                TlsStatus::Pending
            },
            tls_expires_at: cert.then_some(1_000),
            tls_message: String::new(),
            tls_checked_at: None,
            created_at: 0,
        }
    }

    const PREVIEW: &str = "http://abc.127-0-0-1.sslip.io";

    #[test]
    fn aliases_are_the_www_and_apex_counterparts() {
        assert_eq!(
            alias_candidate("example.com").as_deref(),
            Some("www.example.com")
        );
        assert_eq!(
            alias_candidate("www.example.com").as_deref(),
            Some("example.com")
        );
        assert_eq!(alias_candidate("www.com"), None);
    }

    #[test]
    fn the_first_domain_becomes_the_address_and_the_rest_keep_theirs() {
        let new = domain("shop.test", false, false, &["www.shop.test"]);
        let p = plan(
            std::slice::from_ref(&new),
            PREVIEW,
            Change::Add {
                domain: &new,
                make_primary: true,
            },
        );
        assert_eq!(p.issuing.len(), 1);
        assert!(!p.issuing[0].tls && !p.issuing[0].primary);
        assert_eq!(p.issuing[0].names, ["shop.test", "www.shop.test"]);
        assert!(p.after[0].tls && p.after[0].primary);
        assert_eq!(p.url_after, "https://shop.test");

        // A second, non-primary domain: the address stays.
        let first = domain("shop.test", true, true, &[]);
        let second = domain("old-shop.test", false, false, &[]);
        let both = [first.clone(), second.clone()];
        let p = plan(
            &both,
            PREVIEW,
            Change::Add {
                domain: &second,
                make_primary: false,
            },
        );
        assert_eq!(p.url_after, "https://shop.test");
        assert_eq!(p.issuing.len(), 2);
        assert_eq!(p.after.iter().filter(|d| d.primary).count(), 1);
        // Made primary instead: the old one redirects.
        let p = plan(
            &both,
            PREVIEW,
            Change::Add {
                domain: &second,
                make_primary: true,
            },
        );
        assert_eq!(p.url_after, "https://old-shop.test");
        assert!(
            !p.after
                .iter()
                .find(|d| d.hostname == "shop.test")
                .expect("shop.test is still served")
                .primary
        );
    }

    #[test]
    fn failed_first_certificates_are_not_served_and_removal_falls_back_to_the_preview() {
        let live = domain("shop.test", true, true, &[]);
        let failed = domain("broken.test", false, false, &[]);
        let all = [live.clone(), failed];
        assert_eq!(served(&all).len(), 1);
        let p = plan(&all, PREVIEW, Change::Remove { domain: &live });
        assert!(p.after.is_empty());
        assert_eq!(p.url_after, PREVIEW);
    }

    #[test]
    fn certificates_within_fourteen_days_need_attention() {
        let day = 86_400_000;
        assert!(!expires_soon(None, 0));
        assert!(!expires_soon(Some(15 * day), 0));
        assert!(expires_soon(Some(13 * day), 0));
        assert!(expires_soon(Some(-day), 0), "expired");
    }

    #[test]
    fn the_check_records_each_certificate_on_its_own() {
        let ok = domain("a.test", true, true, &[]);
        let bad = domain("b.test", false, true, &[]);
        let gone = domain("c.test", false, true, &[]);
        let busy = domain("d.test", false, false, &[]);
        let certs = vec![
            NodeCertificate {
                name: "a.test".into(),
                expires_at: Some(9_000),
                ok: true,
                error: String::new(),
                attempt_at: None,
            },
            NodeCertificate {
                name: "b.test".into(),
                expires_at: Some(2_000),
                ok: false,
                error: "Connection refused".into(),
                attempt_at: None,
            },
        ];
        let updates = reconcile(&[ok.clone(), bad.clone(), gone.clone(), busy], &certs);
        assert_eq!(updates.len(), 3, "the pending domain is left to its job");
        assert_eq!(updates[0].status, TlsStatus::Active);
        assert_eq!(updates[0].expires_at, Some(9_000));
        assert_eq!(updates[1].status, TlsStatus::Failed);
        assert!(updates[1].message.contains("Connection refused"));
        assert_eq!(updates[2].status, TlsStatus::Failed);
        assert_eq!(updates[2].id, gone.id);
    }
}
