//! Job data as Ansible must read it: data, never a template.
//!
//! ansible-core 2.19 trusts every string of an extra-vars or inventory file as a template, so
//! a site title such as `{{ lookup('pipe', 'id') }}` would run on the control plane. Every
//! string written for a playbook is wrapped as `{"__ansible_unsafe": "..."}`, which Ansible's
//! JSON loader turns into an untrusted value: used as a value everywhere, rendered nowhere.
//! One mechanism for every job type, whatever the string's source (the API, the store, a
//! value a node reported earlier).

use serde_json::{Map, Value};

/// The key Ansible's JSON loader reads as "this string is not a template".
const UNSAFE_KEY: &str = "__ansible_unsafe";

/// `value` with every string marked untrusted. Object keys that Ansible's loader would read
/// as markers (`__ansible_…`) are dropped: no job data needs them, and a marker key is how a
/// value could smuggle a type past the wrapping.
pub fn untrusted_json(value: &Value) -> Value {
    match value {
        Value::String(text) => {
            let mut wrapped = Map::new();
            wrapped.insert(UNSAFE_KEY.to_owned(), Value::String(text.clone()));
            Value::Object(wrapped)
        }
        Value::Array(items) => Value::Array(items.iter().map(untrusted_json).collect()),
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(key, _)| !key.starts_with("__ansible"))
                .map(|(key, item)| (key.clone(), untrusted_json(item)))
                .collect(),
        ),
        Value::Null | Value::Bool(_) | Value::Number(_) => value.clone(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn every_string_at_any_depth_is_wrapped_and_nothing_else_changes() {
        let wrapped = untrusted_json(&json!({
            "title": "{{ lookup('pipe', 'id') }}",
            "n": 3,
            "on": true,
            "none": null,
            "list": ["a", 1, {"deep": "b"}],
        }));
        assert_eq!(
            wrapped,
            json!({
                "title": {"__ansible_unsafe": "{{ lookup('pipe', 'id') }}"},
                "n": 3,
                "on": true,
                "none": null,
                "list": [{"__ansible_unsafe": "a"}, 1, {"deep": {"__ansible_unsafe": "b"}}],
            })
        );
    }

    #[test]
    fn marker_keys_in_the_data_are_dropped() {
        let wrapped = untrusted_json(&json!({
            "__ansible_unsafe": "x",
            "__ansible_vault": "y",
            "nested": {"__ansible_unsafe": "z", "ok": "w"},
        }));
        assert_eq!(
            wrapped,
            json!({"nested": {"ok": {"__ansible_unsafe": "w"}}})
        );
    }
}
