//! The local control protocol: how `coop` commands talk to a running `coop up`.
//!
//! Transport: a Unix domain socket `<data dir>/control.sock` (mode 0600, so only the
//! data dir's owner can use it). Framing: one JSON object per line, one request then one
//! response per connection. Documented in `docs/PROTOCOL.md`.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use coop_model::{Envelope, Record, RecordId, Rejection, State};
use serde::{Deserialize, Serialize};

use crate::error::{one_line, NodeError};
use crate::local::{LocalNode, Status, VerifyReport};

/// Largest request or response line accepted, in bytes.
pub const MAX_CONTROL_LINE: usize = 256 * 1024 * 1024;

/// A request to the node.
///
/// Externally tagged on purpose, like [`Response`]: serde buffers an internally tagged
/// enum's content, and buffered JSON map keys stay strings, so a map keyed by numbers
/// inside (a purchase's rounds) fails to decode.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Request {
    /// `coop status`.
    Status,
    /// The derived state.
    State,
    /// Write a record as this node's device.
    Submit {
        /// The record.
        record: Record,
    },
    /// Ingest envelopes (hex of the wire form) through the gate.
    Import {
        /// Envelopes.
        envelopes: Vec<String>,
    },
    /// Every accepted envelope (hex).
    Export,
    /// Re-verify the store.
    Verify,
}

/// The node's answer (externally tagged: see [`Request`]).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Response {
    /// Status.
    Status {
        /// It.
        status: Box<Status>,
    },
    /// State.
    State {
        /// It.
        state: Box<State>,
    },
    /// The record was written durably.
    Submitted {
        /// Its id.
        id: RecordId,
    },
    /// The ledger refused the record; nothing was written.
    Refused {
        /// Why.
        rejection: Rejection,
    },
    /// Import result.
    Imported {
        /// Summary.
        summary: ImportSummary,
    },
    /// Export result.
    Exported {
        /// Envelopes, hex.
        envelopes: Vec<String>,
    },
    /// Verify result.
    Verified {
        /// Report.
        report: VerifyReport,
    },
    /// Something failed.
    Error {
        /// What.
        message: String,
    },
}

/// What an import did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportSummary {
    /// Changes accepted (new).
    pub accepted: usize,
    /// Changes already held.
    pub duplicates: usize,
    /// Changes waiting for missing dependencies.
    pub pending: usize,
    /// Changes refused by the gate.
    pub rejected: Vec<Rejection>,
}

/// Executes a request against a local node. Returns the response and the envelopes that
/// were newly accepted (for a running node to publish).
#[must_use = "the response answers the client and the accepted envelopes are to be published"]
pub fn dispatch(node: &mut LocalNode, req: Request, now: i64) -> (Response, Vec<Envelope>) {
    match req {
        Request::Status => (
            Response::Status {
                status: Box::new(node.status()),
            },
            vec![],
        ),
        Request::State => (
            Response::State {
                state: Box::new(node.state().clone()),
            },
            vec![],
        ),
        Request::Submit { record } => match node.submit(record, now) {
            Ok(id) => {
                let env = node.envelope(&id).into_iter().collect();
                (Response::Submitted { id }, env)
            }
            Err(NodeError::Refused(rejection)) => (Response::Refused { rejection }, vec![]),
            Err(e) => (
                Response::Error {
                    message: one_line(&e),
                },
                vec![],
            ),
        },
        Request::Import { envelopes } => {
            let mut summary = ImportSummary::default();
            let mut decoded = Vec::new();
            for h in envelopes {
                match hex::decode(&h)
                    .map_err(|_| ())
                    .and_then(|b| Envelope::decode(&b).map_err(|_| ()))
                {
                    Ok(e) => decoded.push(e),
                    Err(()) => summary.rejected.push(Rejection {
                        id: None,
                        device: None,
                        member: None,
                        reason: coop_model::RejectReason::Malformed,
                        detail: "not a hex-encoded envelope".into(),
                    }),
                }
            }
            match node.ingest(decoded) {
                Ok(out) => {
                    summary.accepted = out.accepted.len();
                    summary.duplicates = out.duplicates;
                    summary.pending = out.pending;
                    summary.rejected.extend(out.rejected);
                    (Response::Imported { summary }, out.accepted)
                }
                Err(e) => (
                    Response::Error {
                        message: one_line(&e),
                    },
                    vec![],
                ),
            }
        }
        Request::Export => (
            Response::Exported {
                envelopes: node
                    .export()
                    .iter()
                    .map(|e| hex::encode(e.encode()))
                    .collect(),
            },
            vec![],
        ),
        Request::Verify => match node.verify() {
            Ok(report) => (Response::Verified { report }, vec![]),
            Err(e) => (
                Response::Error {
                    message: one_line(&e),
                },
                vec![],
            ),
        },
    }
}

/// Sends one request to the control socket and waits for the answer.
pub fn call(socket: &Path, req: &Request, timeout: Duration) -> Result<Response, NodeError> {
    let err = |e: std::io::Error| NodeError::control(socket.display().to_string(), e);
    let mut stream = UnixStream::connect(socket).map_err(err)?;
    stream.set_read_timeout(Some(timeout)).map_err(err)?;
    stream.set_write_timeout(Some(timeout)).map_err(err)?;
    let mut line =
        serde_json::to_vec(req).map_err(|e| NodeError::control("encoding the request", e))?;
    line.push(b'\n');
    stream.write_all(&line).map_err(err)?;
    stream.flush().map_err(err)?;
    let mut reader = BufReader::new(stream).take(MAX_CONTROL_LINE as u64);
    let mut buf = String::new();
    reader.read_line(&mut buf).map_err(err)?;
    if buf.is_empty() {
        return Err(NodeError::control_msg(
            "the node closed the connection without answering",
        ));
    }
    serde_json::from_str(&buf).map_err(|e| NodeError::control("bad response", e))
}
