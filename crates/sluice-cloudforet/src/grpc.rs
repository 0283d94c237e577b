//! gRPC transport: requests to `spaceone.api.identity.v2.*` are decoded with the descriptor
//! set and handed to the same handlers REST uses; server reflection (`v1alpha`) answers from
//! the same set. Framing, compression flags and trailers are tonic's.

use std::future::Future;
use std::pin::Pin;

use bytes::{Buf, BufMut, Bytes};
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::{Request, Response, Status};

use crate::{wire, Cloudforet};

/// Passes message bytes through unchanged: the descriptor set does the (de)serialising.
#[derive(Debug, Clone, Copy, Default)]
pub struct RawCodec;

#[derive(Debug, Clone, Copy, Default)]
pub struct RawEncoder;

#[derive(Debug, Clone, Copy, Default)]
pub struct RawDecoder;

impl Codec for RawCodec {
    type Encode = Bytes;
    type Decode = Bytes;
    type Encoder = RawEncoder;
    type Decoder = RawDecoder;

    fn encoder(&mut self) -> RawEncoder {
        RawEncoder
    }

    fn decoder(&mut self) -> RawDecoder {
        RawDecoder
    }
}

impl Encoder for RawEncoder {
    type Item = Bytes;
    type Error = Status;

    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put(item);
        Ok(())
    }
}

impl Decoder for RawDecoder {
    type Item = Bytes;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Bytes>, Status> {
        let len = src.remaining();
        Ok(Some(src.copy_to_bytes(len)))
    }
}

/// One unary call of a served method.
struct Unary {
    cloudforet: Cloudforet,
    method: prost_reflect::MethodDescriptor,
}

impl tonic::server::UnaryService<Bytes> for Unary {
    type Response = Bytes;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Bytes>, Status>> + Send>>;

    fn call(&mut self, request: Request<Bytes>) -> Self::Future {
        let cloudforet = self.cloudforet.clone();
        let method = self.method.clone();
        Box::pin(async move {
            let token = request.metadata().get("token").and_then(|v| v.to_str().ok()).map(str::to_string);
            let input = wire::decode(&method.input(), request.get_ref()).map_err(|e| e.to_status())?;
            let output =
                cloudforet.call(&method, token.as_deref(), input).await.map_err(|e| e.to_status())?;
            let bytes = wire::encode(&method.output(), &output).map_err(|e| e.to_status())?;
            Ok(Response::new(Bytes::from(bytes)))
        })
    }
}

impl Cloudforet {
    /// Serves one gRPC request (HTTP/2, `content-type: application/grpc`).
    pub async fn grpc<B>(&self, request: http::Request<B>) -> http::Response<tonic::body::Body>
    where
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>> + Send,
    {
        let path = request.uri().path().to_string();
        if path.starts_with("/grpc.reflection.v1alpha.ServerReflection/") {
            return self.reflect(self.reflection.clone(), request).await;
        }
        if path.starts_with("/grpc.reflection.v1.ServerReflection/") {
            return self.reflect(self.reflection_v1.clone(), request).await;
        }
        let Some(method) = wire::method_by_grpc_path(&path) else {
            return crate::error::CfError::unknown_operation(&path).to_status().into_http();
        };
        let mut grpc = tonic::server::Grpc::new(RawCodec);
        grpc.unary(Unary { cloudforet: self.clone(), method }, request).await
    }

    async fn reflect<B>(
        &self,
        service: crate::Reflection,
        request: http::Request<B>,
    ) -> http::Response<tonic::body::Body>
    where
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>> + Send,
    {
        use tower::ServiceExt;
        let request = request.map(tonic::body::Body::new);
        match service.oneshot(request).await {
            Ok(response) => response,
            Err(never) => match never {},
        }
    }
}

/// The reflection services (`v1alpha`, which Cloudforet's clients use, and `v1`) over the
/// embedded descriptor set.
pub fn reflection_services() -> (crate::Reflection, crate::Reflection) {
    let builder = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(wire::DESCRIPTOR_SET)
    };
    let v1alpha = builder().build_v1alpha().expect("the embedded descriptor set builds reflection");
    let v1 = builder().build_v1().expect("the embedded descriptor set builds reflection");
    (crate::Reflection::new(v1alpha), crate::Reflection::new(v1))
}
