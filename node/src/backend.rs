//! What `coop` commands talk to: the running node through its control socket when
//! `coop up` serves the data dir, otherwise the store directly.

use std::time::Duration;

use coop_model::{Envelope, Record, RecordId, State};

use crate::control::{self, ImportSummary, Request, Response};
use crate::datadir::DataDir;
use crate::error::NodeError;
use crate::local::{LocalNode, Status, VerifyReport};

/// How long a command waits for the running node.
pub const CONTROL_TIMEOUT: Duration = Duration::from_secs(120);

/// The data dir's node, running or not.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)]
pub enum Backend {
    /// No node runs: the command owns the store for its duration.
    Direct(LocalNode),
    /// `coop up` runs: commands go through its control socket.
    Remote(DataDir),
}

impl Backend {
    /// Connects to the running node if there is one, else opens the store.
    pub fn open(dir: &DataDir) -> Result<Backend, NodeError> {
        let socket = dir.control_socket();
        if socket.exists()
            && control::call(&socket, &Request::Status, Duration::from_secs(10)).is_ok()
        {
            return Ok(Backend::Remote(dir.clone()));
        }
        Ok(Backend::Direct(LocalNode::open(dir)?))
    }

    /// Whether a running node serves the data dir.
    pub fn is_remote(&self) -> bool {
        matches!(self, Backend::Remote(_))
    }

    fn call(dir: &DataDir, req: Request) -> Result<Response, NodeError> {
        match control::call(&dir.control_socket(), &req, CONTROL_TIMEOUT)? {
            Response::Error { message } => Err(NodeError::control_msg(message)),
            r => Ok(r),
        }
    }

    /// Writes a record; a refusal is [`NodeError::Refused`] and writes nothing.
    pub fn submit(&mut self, record: Record, now: i64) -> Result<RecordId, NodeError> {
        match self {
            Backend::Direct(n) => n.submit(record, now),
            Backend::Remote(d) => match Self::call(d, Request::Submit { record })? {
                Response::Submitted { id } => Ok(id),
                Response::Refused { rejection } => Err(NodeError::Refused(rejection)),
                other => Err(unexpected(other)),
            },
        }
    }

    /// The derived state.
    pub fn state(&mut self) -> Result<State, NodeError> {
        match self {
            Backend::Direct(n) => Ok(n.state().clone()),
            Backend::Remote(d) => match Self::call(d, Request::State)? {
                Response::State { state } => Ok(*state),
                other => Err(unexpected(other)),
            },
        }
    }

    /// Status.
    pub fn status(&mut self) -> Result<Status, NodeError> {
        match self {
            Backend::Direct(n) => Ok(n.status()),
            Backend::Remote(d) => match Self::call(d, Request::Status)? {
                Response::Status { status } => Ok(*status),
                other => Err(unexpected(other)),
            },
        }
    }

    /// Imports envelopes through the gate.
    pub fn import(&mut self, envelopes: Vec<Envelope>) -> Result<ImportSummary, NodeError> {
        match self {
            Backend::Direct(n) => {
                let out = n.ingest(envelopes)?;
                Ok(ImportSummary {
                    accepted: out.accepted.len(),
                    duplicates: out.duplicates,
                    pending: out.pending,
                    rejected: out.rejected,
                })
            }
            Backend::Remote(d) => {
                let envelopes = envelopes.iter().map(|e| hex::encode(e.encode())).collect();
                match Self::call(d, Request::Import { envelopes })? {
                    Response::Imported { summary } => Ok(summary),
                    other => Err(unexpected(other)),
                }
            }
        }
    }

    /// Every accepted envelope, in causal order.
    pub fn export(&mut self) -> Result<Vec<Envelope>, NodeError> {
        match self {
            Backend::Direct(n) => Ok(n.export()),
            Backend::Remote(d) => match Self::call(d, Request::Export)? {
                Response::Exported { envelopes } => envelopes
                    .iter()
                    .map(|h| {
                        hex::decode(h)
                            .ok()
                            .and_then(|b| Envelope::decode(&b).ok())
                            .ok_or_else(|| NodeError::control_msg("bad envelope in export"))
                    })
                    .collect(),
                other => Err(unexpected(other)),
            },
        }
    }

    /// Re-verifies the store.
    pub fn verify(&mut self) -> Result<VerifyReport, NodeError> {
        match self {
            Backend::Direct(n) => n.verify(),
            Backend::Remote(d) => match Self::call(d, Request::Verify)? {
                Response::Verified { report } => Ok(report),
                other => Err(unexpected(other)),
            },
        }
    }
}

fn unexpected(r: Response) -> NodeError {
    NodeError::control_msg(format!("unexpected response {r:?}"))
}
