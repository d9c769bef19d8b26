//! A small blocking client of the API over `api.sock` (what `coop` commands use): one
//! HTTP/1.1 request per connection, on a current-thread runtime of its own.

use std::path::{Path, PathBuf};
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::net::UnixStream;

use super::{ErrorBody, PREFIX};
use crate::error::NodeError;

/// How long a command waits for the running node's answer.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(120);

/// A client of one node's API socket.
#[derive(Debug)]
pub struct ApiClient {
    socket: PathBuf,
    rt: tokio::runtime::Runtime,
    timeout: Duration,
}

impl ApiClient {
    /// A client of the API at `socket` (nothing is sent yet).
    pub fn new(socket: &Path) -> Result<ApiClient, NodeError> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| NodeError::api("cannot start a runtime for the API client", e))?;
        Ok(ApiClient {
            socket: socket.to_path_buf(),
            rt,
            timeout: CALL_TIMEOUT,
        })
    }

    /// The same client with another time limit per call.
    pub fn with_timeout(mut self, timeout: Duration) -> ApiClient {
        self.timeout = timeout;
        self
    }

    /// `GET /api/v1{path}` (path with its query string).
    pub fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, NodeError> {
        self.call(Method::GET, path, None)
    }

    /// `POST /api/v1{path}` with a JSON body.
    pub fn post<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, NodeError> {
        let body =
            serde_json::to_vec(body).map_err(|e| NodeError::api("encoding the request", e))?;
        self.call(Method::POST, path, Some(body))
    }

    fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<T, NodeError> {
        let uri = format!("{PREFIX}{path}");
        let fut = request(&self.socket, method, &uri, body);
        let (status, bytes) = self
            .rt
            .block_on(async { tokio::time::timeout(self.timeout, fut).await })
            .map_err(|_| {
                NodeError::api_msg(format!("no answer from the node within {:?}", self.timeout))
            })??;
        if status.is_success() {
            return serde_json::from_slice(&bytes)
                .map_err(|e| NodeError::api(format!("bad answer to {uri}"), e));
        }
        Err(match serde_json::from_slice::<ErrorBody>(&bytes) {
            Ok(ErrorBody { error }) => match (error.rejection, error.reason.as_str()) {
                (Some(r), _) => NodeError::Refused(r),
                (None, "node_busy") => NodeError::Busy,
                (
                    None,
                    "bad_request" | "unknown_kind" | "not_found" | "withheld" | "other_machine",
                ) => NodeError::InvalidInput(error.detail),
                (None, reason) => NodeError::api_msg(format!("{reason}: {}", error.detail)),
            },
            Err(_) => NodeError::api_msg(format!(
                "{status} from {uri}: {}",
                String::from_utf8_lossy(&bytes).lines().next().unwrap_or("")
            )),
        })
    }
}

async fn request(
    socket: &Path,
    method: Method,
    uri: &str,
    body: Option<Vec<u8>>,
) -> Result<(StatusCode, Bytes), NodeError> {
    let stream = UnixStream::connect(socket)
        .await
        .map_err(|e| NodeError::io(socket, e))?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| NodeError::api("connecting to the node", e))?;
    let conn = tokio::spawn(conn);
    let req = Request::builder()
        .method(method)
        .uri(uri)
        .header("host", "coop")
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.unwrap_or_default())))
        .map_err(|e| NodeError::api("building the request", e))?;
    let resp = sender
        .send_request(req)
        .await
        .map_err(|e| NodeError::api(format!("calling {uri}"), e))?;
    let status = resp.status();
    let bytes = resp
        .into_body()
        .collect()
        .await
        .map_err(|e| NodeError::api(format!("reading the answer to {uri}"), e))?
        .to_bytes();
    drop(sender);
    let _ = conn.await;
    Ok((status, bytes))
}
