//! Drift: what changed in production since a staging environment was cloned from it (or since
//! the last promotion), in anything a promotion would overwrite. The rules of what counts live
//! here; the node applies them (`pressluft-fingerprint`: release code hash, a checksum per
//! table, a hash per option, compared with the baseline there, the same way for drift checks
//! and for the gate of a promotion).
//!
//! Not drift: protected tables of the preset (a promotion never overwrites them), and volatile
//! data WordPress rewrites on its own: transients, cron, rewrite rules, update locks, sessions
//! (options, usermeta keys and the WooCommerce sessions table below). Uploads are protected by
//! both presets and are not fingerprinted.

use serde::Serialize;
use serde_json::Value;

/// The table prefix of every environment (`$table_prefix` in wp-config.php).
pub const TABLE_PREFIX: &str = "wp_";

/// Option-name patterns (SQL LIKE) that WordPress rewrites by itself.
pub const VOLATILE_OPTIONS: &[&str] = &[
    "\\_transient\\_%",
    "\\_site\\_transient\\_%",
    "cron",
    "doing\\_cron",
    "rewrite\\_rules",
    "recently\\_edited",
    "auto\\_updater.lock",
    "core\\_updater.lock",
    "\\_wc\\_session\\_%",
];

/// Usermeta-key patterns (SQL LIKE) that change with logins and carts.
pub const VOLATILE_USERMETA: &[&str] = &[
    "session\\_tokens",
    "wc\\_last\\_active",
    "\\_woocommerce\\_persistent\\_cart\\_%",
];

/// Tables (after the prefix) that hold only sessions.
const VOLATILE_TABLES: &[&str] = &["woocommerce_sessions"];

/// Tables (after the prefix) `content-protect` keeps.
const CONTENT_TABLES: &[&str] = &[
    "posts",
    "postmeta",
    "terms",
    "term_taxonomy",
    "term_relationships",
    "comments",
    "commentmeta",
];

/// Tables (after the prefix) `commerce-protect` keeps besides the content ones: WooCommerce
/// orders (HPOS and legacy items), their lookups, customers, downloads and payment tokens.
const COMMERCE_TABLES: &[&str] = &[
    "wc_orders",
    "wc_orders_meta",
    "wc_order_addresses",
    "wc_order_operational_data",
    "woocommerce_order_items",
    "woocommerce_order_itemmeta",
    "wc_order_stats",
    "wc_order_product_lookup",
    "wc_order_tax_lookup",
    "wc_order_coupon_lookup",
    "wc_customer_lookup",
    "wc_download_log",
    "woocommerce_downloadable_product_permissions",
    "woocommerce_payment_tokens",
    "woocommerce_payment_tokenmeta",
];

/// What production keeps in a promotion (and what is therefore not drift).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Preset {
    ContentProtect,
    CommerceProtect,
}

impl Preset {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::ContentProtect => "content-protect",
            Self::CommerceProtect => "commerce-protect",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "content-protect" => Some(Self::ContentProtect),
            "commerce-protect" => Some(Self::CommerceProtect),
            _ => None,
        }
    }

    /// Whether `table` (with `prefix`) is kept by this preset.
    pub fn protects(self, prefix: &str, table: &str) -> bool {
        let Some(name) = table.strip_prefix(prefix) else {
            return false;
        };
        CONTENT_TABLES.contains(&name)
            || (self == Self::CommerceProtect && COMMERCE_TABLES.contains(&name))
    }
}

/// Tables a drift check and a promotion leave alone under `preset`: the protected ones and
/// the volatile ones, with the prefix (comma-separated, for the node).
pub fn ignored_tables(preset: Preset, prefix: &str) -> String {
    let commerce: &[&str] = if preset == Preset::CommerceProtect {
        COMMERCE_TABLES
    } else {
        &[]
    };
    CONTENT_TABLES
        .iter()
        .chain(commerce)
        .chain(VOLATILE_TABLES)
        .map(|t| format!("{prefix}{t}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// One change a drift check found, as the node reports it (checked before it is recorded).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DriftItem {
    /// "code", "table" or "option".
    pub category: &'static str,
    pub name: String,
    pub detail: String,
}

impl DriftItem {
    /// An item from a playbook's report; `None` for anything malformed.
    pub fn from_report(item: &Value) -> Option<Self> {
        let category = match item.get("category")?.as_str()? {
            "code" => "code",
            "table" => "table",
            "option" => "option",
            _ => return None,
        };
        let text = |k: &str| -> Option<String> {
            Some(item.get(k)?.as_str()?.chars().take(300).collect())
        };
        Some(Self {
            category,
            name: text("name")?,
            detail: text("detail")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn presets_leave_their_tables_alone() {
        let content = ignored_tables(Preset::ContentProtect, "wp_");
        assert!(content.split(',').any(|t| t == "wp_posts"));
        assert!(
            content.split(',').any(|t| t == "wp_woocommerce_sessions"),
            "volatile"
        );
        assert!(!content.split(',').any(|t| t == "wp_wc_orders"));
        let commerce = ignored_tables(Preset::CommerceProtect, "wp_");
        assert!(commerce.split(',').any(|t| t == "wp_wc_orders"));
        assert!(
            !commerce
                .split(',')
                .any(|t| t == "wp_options" || t == "wp_users")
        );
        assert_eq!(
            Preset::parse("commerce-protect"),
            Some(Preset::CommerceProtect)
        );
        assert!(Preset::CommerceProtect.protects("wp_", "wp_wc_orders"));
        assert!(!Preset::ContentProtect.protects("wp_", "wp_wc_orders"));
        assert!(!Preset::ContentProtect.protects("xx_", "wp_posts"));
    }

    #[test]
    fn reported_items_are_checked() {
        let ok = json!({"category": "option", "name": "blogname", "detail": "changed"});
        assert_eq!(
            DriftItem::from_report(&ok).map(|i| i.category),
            Some("option")
        );
        assert!(
            DriftItem::from_report(&json!({"category": "bogus", "name": "x", "detail": "y"}))
                .is_none()
        );
        assert!(DriftItem::from_report(&json!({"category": "table"})).is_none());
        let long = json!({"category": "table", "name": "x".repeat(1000), "detail": "d"});
        assert_eq!(
            DriftItem::from_report(&long).expect("valid").name.len(),
            300
        );
    }
}
