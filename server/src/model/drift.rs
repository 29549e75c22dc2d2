//! Drift: what changed in production since a staging environment was cloned from it (or since
//! the last promotion), in anything a promotion would overwrite. Fingerprints come from the
//! node (`pressluft-fingerprint`: release code hash, a checksum per table, a hash per option);
//! the rules of what counts live here, in one place.
//!
//! Not drift: protected tables of the preset (a promotion never overwrites them), and volatile
//! data WordPress rewrites on its own: transients, cron, rewrite rules, update locks, sessions
//! (options, usermeta keys and the WooCommerce sessions table below). Uploads are protected by
//! both presets and are not fingerprinted.

use std::collections::BTreeSet;

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

/// One change found by a drift check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DriftItem {
    /// "code", "table" or "option".
    pub category: &'static str,
    pub name: String,
    pub detail: String,
}

/// The changes between a baseline fingerprint and production's current one that a promotion
/// with `preset` would overwrite.
pub fn compare(baseline: &Value, current: &Value, preset: Preset, prefix: &str) -> Vec<DriftItem> {
    let mut items = Vec::new();
    if baseline["code"] != current["code"] {
        items.push(DriftItem {
            category: "code",
            name: current["release"].as_str().unwrap_or_default().to_owned(),
            detail: format!(
                "the live code changed (release {} at the baseline, {} now)",
                baseline["release"].as_str().unwrap_or("?"),
                current["release"].as_str().unwrap_or("?")
            ),
        });
    }
    let options = format!("{prefix}options");
    for (name, detail) in changed_keys(&baseline["tables"], &current["tables"]) {
        let volatile = name
            .strip_prefix(prefix)
            .is_some_and(|n| VOLATILE_TABLES.contains(&n));
        if name != options && !volatile && !preset.protects(prefix, &name) {
            items.push(DriftItem {
                category: "table",
                name,
                detail,
            });
        }
    }
    for (name, detail) in changed_keys(&baseline["options"], &current["options"]) {
        if !VOLATILE_OPTIONS.iter().any(|p| like(p, &name)) {
            items.push(DriftItem {
                category: "option",
                name,
                detail,
            });
        }
    }
    items
}

/// Keys of two JSON objects whose values differ: (key, "changed" | "added" | "removed").
fn changed_keys(before: &Value, now: &Value) -> Vec<(String, String)> {
    let empty = serde_json::Map::new();
    let before = before.as_object().unwrap_or(&empty);
    let now = now.as_object().unwrap_or(&empty);
    let keys: BTreeSet<&String> = before.keys().chain(now.keys()).collect();
    keys.into_iter()
        .filter_map(|k| match (before.get(k), now.get(k)) {
            (Some(a), Some(b)) if a != b => Some((k.clone(), "changed".to_owned())),
            (None, Some(_)) => Some((k.clone(), "added".to_owned())),
            (Some(_), None) => Some((k.clone(), "removed".to_owned())),
            _ => None,
        })
        .collect()
}

/// SQL LIKE with `%` and `\` escapes (the patterns above use no `_` wildcard).
fn like(pattern: &str, text: &str) -> bool {
    fn go(p: &[u8], t: &[u8]) -> bool {
        match p.split_first() {
            None => t.is_empty(),
            Some((b'%', rest)) => (0..=t.len()).any(|i| go(rest, &t[i..])),
            Some((b'\\', rest)) => match (rest.split_first(), t.split_first()) {
                (Some((c, rest)), Some((d, t))) if c == d => go(rest, t),
                _ => false,
            },
            Some((c, rest)) => t.split_first().is_some_and(|(d, t)| c == d && go(rest, t)),
        }
    }
    go(pattern.as_bytes(), text.as_bytes())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn fingerprint(code: &str, tables: &Value, options: &Value) -> Value {
        json!({"release": "r1", "code": code, "tables": tables, "options": options})
    }

    #[test]
    fn protected_and_volatile_changes_are_not_drift() {
        let base = fingerprint(
            "c1",
            &json!({"wp_posts": "1", "wp_postmeta": "1", "wp_usermeta": "1:1", "wp_woocommerce_sessions": "1",
                    "wp_wc_orders": "1"}),
            &json!({"blogname": "a", "_transient_x": "1", "cron": "1"}),
        );
        let now = fingerprint(
            "c1",
            &json!({"wp_posts": "2", "wp_postmeta": "2", "wp_usermeta": "1:1", "wp_woocommerce_sessions": "2",
                    "wp_wc_orders": "1"}),
            &json!({"blogname": "a", "_transient_x": "2", "_transient_y": "1", "cron": "2"}),
        );
        assert!(compare(&base, &now, Preset::ContentProtect, "wp_").is_empty());
    }

    #[test]
    fn code_tables_and_options_a_promotion_overwrites_are_drift() {
        let base = fingerprint(
            "c1",
            &json!({"wp_posts": "1", "wp_users": "1", "wp_wc_orders": "1"}),
            &json!({"blogname": "a", "stylesheet": "t1"}),
        );
        let now = fingerprint(
            "c2",
            &json!({"wp_posts": "1", "wp_users": "2", "wp_wc_orders": "2", "wp_extra": "1"}),
            &json!({"blogname": "b", "new_option": "1"}),
        );
        let items = compare(&base, &now, Preset::ContentProtect, "wp_");
        let names: Vec<(&str, &str, &str)> = items
            .iter()
            .map(|i| (i.category, i.name.as_str(), i.detail.as_str()))
            .collect();
        assert_eq!(items[0].category, "code");
        assert_eq!(
            &names[1..],
            [
                ("table", "wp_extra", "added"),
                ("table", "wp_users", "changed"),
                ("table", "wp_wc_orders", "changed"),
                ("option", "blogname", "changed"),
                ("option", "new_option", "added"),
                ("option", "stylesheet", "removed"),
            ]
        );
        // Orders are protected by commerce-protect only.
        let commerce = compare(&base, &now, Preset::CommerceProtect, "wp_");
        assert!(!commerce.iter().any(|i| i.name == "wp_wc_orders"));
    }

    #[test]
    fn like_patterns_match_as_sql_does() {
        assert!(like("\\_transient\\_%", "_transient_feed"));
        assert!(!like("\\_transient\\_%", "transient_feed"));
        assert!(like("cron", "cron"));
        assert!(!like("cron", "cronx"));
        assert!(like("auto\\_updater.lock", "auto_updater.lock"));
        assert_eq!(
            Preset::parse("commerce-protect"),
            Some(Preset::CommerceProtect)
        );
        assert!(Preset::CommerceProtect.protects("wp_", "wp_wc_orders"));
        assert!(!Preset::ContentProtect.protects("wp_", "wp_wc_orders"));
        assert!(!Preset::ContentProtect.protects("xx_", "wp_posts"));
    }
}
