//! The protobuf codec of the generated services (set in `build.rs`): prost's encoder, and a
//! decoder that answers a message which does not decode with `INVALID_ARGUMENT` /
//! `ValidationError` instead of tonic's `INTERNAL`. By the time a request message is decoded the
//! transport has authenticated its bytes (see [`super::auth_layer`]), so a decode failure is the
//! signed caller's malformed input, not a server fault.
//!
//! The generated clients share the codec; for them a response that does not decode is reported
//! the same way.

use super::status::to_status;
use crate::error::{AwsCode, BrokerError};
use std::marker::PhantomData;
use tonic::Status;
use tonic::codec::{DecodeBuf, Decoder};
use tonic_prost::ProstEncoder;

/// Encodes `T`, decodes `U`.
#[derive(Debug)]
pub struct ProtoCodec<T, U>(PhantomData<(T, U)>);

impl<T, U> Default for ProtoCodec<T, U> {
    fn default() -> Self {
        Self(PhantomData)
    }
}

impl<T, U> tonic::codec::Codec for ProtoCodec<T, U>
where
    T: prost::Message + Send + 'static,
    U: prost::Message + Default + Send + 'static,
{
    type Encode = T;
    type Decode = U;
    type Encoder = ProstEncoder<T>;
    type Decoder = ProtoDecoder<U>;

    fn encoder(&mut self) -> Self::Encoder {
        ProstEncoder::default()
    }

    fn decoder(&mut self) -> Self::Decoder {
        ProtoDecoder(PhantomData)
    }
}

/// Decodes `U`, refusing bytes that are not its protobuf encoding as a validation error.
#[derive(Debug)]
pub struct ProtoDecoder<U>(PhantomData<U>);

/// The status for a message that does not decode.
pub fn decode_error(e: &prost::DecodeError) -> Status {
    to_status(&BrokerError::new(
        AwsCode::ValidationError,
        format!("the message is not a valid protobuf encoding of its type: {e}"),
    ))
}

impl<U: prost::Message + Default> Decoder for ProtoDecoder<U> {
    type Item = U;
    type Error = Status;

    fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<U>, Status> {
        U::decode(buf).map(Some).map_err(|e| decode_error(&e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic_types::StatusExt;

    #[test]
    fn a_decode_failure_is_a_validation_error() {
        let e = <prost_types::Duration as prost::Message>::decode(&[0x0a, 0x05][..]).unwrap_err();
        let s = decode_error(&e);
        assert_eq!(s.code(), tonic::Code::InvalidArgument);
        assert_eq!(
            s.get_details_error_info().unwrap().reason,
            "ValidationError"
        );
    }
}
