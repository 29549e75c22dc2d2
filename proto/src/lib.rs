//! The `pressluft.v1` contract: generated messages, clients and servers.
//!
//! Every client (CLI, TUI, browser UI, scripts) and the server build on these types; the
//! `.proto` files under `proto/pressluft/v1` are the source of truth.

#[allow(clippy::all, clippy::pedantic, missing_docs)]
pub mod v1 {
    tonic::include_proto!("pressluft.v1");
}

/// Encoded `FileDescriptorSet` of the contract, for gRPC server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/pressluft_descriptor.bin"));

/// Messages in the protobuf canonical JSON mapping, driven by the contract's descriptors (no
/// hand-written serialiser per message).
pub mod json {
    use std::sync::LazyLock;

    use prost_reflect::{DescriptorPool, DynamicMessage, SerializeOptions};
    use serde_json::Value;

    static POOL: LazyLock<Result<DescriptorPool, String>> = LazyLock::new(|| {
        DescriptorPool::decode(super::FILE_DESCRIPTOR_SET).map_err(|e| e.to_string())
    });

    /// `message` as canonical JSON: fields that are unset or hold their default (empty string,
    /// 0, false, unspecified enum, absent message) are left out, enums by their value names
    /// (`JOB_STATUS_RUNNING`), timestamps in RFC 3339; with two choices for people and
    /// scripts: field names as in the .proto files (`create_time`) and 64-bit integers as
    /// numbers.
    ///
    /// # Errors
    /// Only if the message is not part of the contract this crate was built from.
    pub fn to_json<M: prost::Message + prost::Name>(message: &M) -> Result<Value, String> {
        let pool = POOL.as_ref().map_err(Clone::clone)?;
        let name = M::full_name();
        let descriptor = pool
            .get_message_by_name(&name)
            .ok_or_else(|| format!("{name} is not in the contract"))?;
        let dynamic = DynamicMessage::decode(descriptor, message.encode_to_vec().as_slice())
            .map_err(|e| e.to_string())?;
        let options = SerializeOptions::new()
            .use_proto_field_name(true)
            .stringify_64_bit_integers(false);
        dynamic
            .serialize_with_options(serde_json::value::Serializer, &options)
            .map_err(|e| e.to_string())
    }
}

impl v1::ErrorReason {
    /// The spelling in a status's `google.rpc.ErrorInfo.reason`: the value's name without the
    /// `ERROR_REASON_` prefix (`SITE_BUSY`).
    pub fn wire_name(self) -> &'static str {
        let name = self.as_str_name();
        name.strip_prefix("ERROR_REASON_").unwrap_or(name)
    }

    /// The reason an `ErrorInfo.reason` names, if it is one of the contract's.
    pub fn from_wire_name(reason: &str) -> Option<Self> {
        Self::from_str_name(&format!("ERROR_REASON_{reason}")).filter(|r| *r != Self::Unspecified)
    }
}

#[cfg(test)]
mod tests {
    use super::v1::ErrorReason;

    #[test]
    fn reasons_travel_by_their_short_names() {
        assert_eq!(ErrorReason::SiteBusy.wire_name(), "SITE_BUSY");
        assert_eq!(
            ErrorReason::from_wire_name("SITE_BUSY"),
            Some(ErrorReason::SiteBusy)
        );
        assert_eq!(ErrorReason::from_wire_name("UNSPECIFIED"), None);
        assert_eq!(ErrorReason::from_wire_name("site_busy"), None);
        for value in 1..=31 {
            let reason = ErrorReason::try_from(value).expect("dense values");
            assert_eq!(
                ErrorReason::from_wire_name(reason.wire_name()),
                Some(reason)
            );
        }
    }
}
