//! Two-party hour receipts (docs/RULES.md R2) that anyone can verify on their own, without a ledger.
//!
//! A [`Receipt`] carries the provider's signed attestation, the receiver's signed
//! confirmation or decline, and the certificate change (the seq-1 `genesis`, `join` or
//! `device` record) of each writing device, which binds that device to its member's identity
//! key. [`Receipt::verify`] re-runs the gate on all four envelopes and checks that they fit
//! together. It proves that both members signed; it does not prove that a ledger counted the
//! exchange (a confirmation can still be refused `below_floor` in total order), which is why
//! [`crate::Ledger::receipt`] only exports settlements that derivation counted.
//!
//! The JSON form (`to_json` / `from_json`) holds the envelopes in their hex wire form:
//!
//! ```text
//! { "format": "coop/receipt/v1", "community": hex,
//!   "attestation": hex, "settlement": hex,
//!   "provider_certificate": hex, "receiver_certificate": hex }
//! ```

use crate::record;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::envelope::{Envelope, Rejection};
use crate::gate::{certified_member, verify_envelope, Verified};
use crate::ids::{CommunityId, Day, MemberId, Minutes, RecordId};
use crate::record::Record;

/// The `format` tag of the JSON form.
pub const RECEIPT_FORMAT: &str = "coop/receipt/v1";

/// An hour attestation and its settlement, with the certificates of both devices.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    /// The community whose ledger the changes belong to (their signatures are bound to it).
    pub community: CommunityId,
    /// The provider's `attest` change.
    pub attestation: Envelope,
    /// The receiver's `confirm` or `decline` change.
    pub settlement: Envelope,
    /// The certificate change of the device that wrote the attestation.
    pub provider_cert: Envelope,
    /// The certificate change of the device that wrote the settlement.
    pub receiver_cert: Envelope,
}

/// What a verified receipt says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReceiptSummary {
    /// The community.
    pub community: CommunityId,
    /// The attestation's record id.
    pub attestation: RecordId,
    /// The settlement's record id.
    pub settlement: RecordId,
    /// Who provided the service (wrote the attestation).
    pub provider: MemberId,
    /// Who received it (wrote the settlement).
    pub receiver: MemberId,
    /// How long.
    pub minutes: Minutes,
    /// What was done.
    pub service: String,
    /// The day of service.
    pub date: Day,
    /// Confirmed (`true`) or declined (`false`) by the receiver.
    pub confirmed: bool,
}

/// One of the four envelopes of a receipt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReceiptPart {
    /// The attestation.
    Attestation,
    /// The confirmation or decline.
    Settlement,
    /// The provider device's certificate.
    ProviderCertificate,
    /// The receiver device's certificate.
    ReceiverCertificate,
}

impl fmt::Display for ReceiptPart {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ReceiptPart::Attestation => "attestation",
            ReceiptPart::Settlement => "settlement",
            ReceiptPart::ProviderCertificate => "provider certificate",
            ReceiptPart::ReceiverCertificate => "receiver certificate",
        })
    }
}

/// Why a receipt does not verify, or does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReceiptError {
    /// One envelope fails the gate (signature, community, decoding, layout...).
    #[error("the {part} is refused: {rejection}")]
    Refused {
        /// Which envelope.
        part: ReceiptPart,
        /// The gate's refusal.
        rejection: Rejection,
    },
    /// An envelope carries the wrong kind of record.
    #[error("the {part} is a {found} record, expected {expected}")]
    WrongKind {
        /// Which envelope.
        part: ReceiptPart,
        /// The kind found.
        found: &'static str,
        /// The kind expected.
        expected: &'static str,
    },
    /// A certificate is not the first change of the device that wrote the record it vouches for.
    #[error("the {part} does not certify the device that wrote the {certifies}")]
    CertificateMismatch {
        /// Which certificate.
        part: ReceiptPart,
        /// The record it should certify.
        certifies: ReceiptPart,
    },
    /// The settlement refers to another attestation.
    #[error("the settlement refers to attestation {found}, not {expected}")]
    SettlementMismatch {
        /// The attestation in the receipt.
        expected: RecordId,
        /// The attestation the settlement names.
        found: RecordId,
    },
    /// The settlement was not written by the receiver the attestation names.
    #[error("the settlement was written by {settled_by}, but the attestation names {receiver}")]
    NotTheReceiver {
        /// The receiver named by the attestation.
        receiver: MemberId,
        /// The member whose device wrote the settlement.
        settled_by: MemberId,
    },
    /// The provider attested hours to themselves.
    #[error("provider and receiver are the same member")]
    SelfAttestation,
    /// The JSON form does not parse.
    #[error("not a receipt: {0}")]
    Format(String),
}

#[derive(Serialize, Deserialize)]
struct Wire {
    format: String,
    community: CommunityId,
    attestation: String,
    settlement: String,
    provider_certificate: String,
    receiver_certificate: String,
}

impl Receipt {
    /// Checks the receipt on its own: every envelope passes the gate for the community, the
    /// certificates bind each writing device to its member, the attestation names the
    /// receiver, and the settlement names the attestation and is written by the receiver.
    pub fn verify(&self) -> Result<ReceiptSummary, ReceiptError> {
        let gate = |part, env: &Envelope| {
            verify_envelope(env.clone(), &self.community, true)
                .map_err(|rejection| ReceiptError::Refused { part, rejection })
        };
        let att = gate(ReceiptPart::Attestation, &self.attestation)?;
        let set = gate(ReceiptPart::Settlement, &self.settlement)?;
        let pcert = gate(ReceiptPart::ProviderCertificate, &self.provider_cert)?;
        let rcert = gate(ReceiptPart::ReceiverCertificate, &self.receiver_cert)?;

        let Record::Attest(record::Attest {
            to,
            minutes,
            service,
            date,
            ..
        }) = &att.record
        else {
            return Err(wrong_kind(ReceiptPart::Attestation, &att, "attest"));
        };
        let (referenced, confirmed) = match &set.record {
            Record::Confirm(record::Confirm { attestation }) => (*attestation, true),
            Record::Decline(record::Decline { attestation }) => (*attestation, false),
            _ => {
                return Err(wrong_kind(
                    ReceiptPart::Settlement,
                    &set,
                    "confirm or decline",
                ))
            }
        };
        let provider = cert_member(&pcert, &att, ReceiptPart::ProviderCertificate)?;
        let settled_by = cert_member(&rcert, &set, ReceiptPart::ReceiverCertificate)?;
        if referenced != att.id {
            return Err(ReceiptError::SettlementMismatch {
                expected: att.id,
                found: referenced,
            });
        }
        if settled_by != *to {
            return Err(ReceiptError::NotTheReceiver {
                receiver: *to,
                settled_by,
            });
        }
        if provider == *to {
            return Err(ReceiptError::SelfAttestation);
        }
        Ok(ReceiptSummary {
            community: self.community,
            attestation: att.id,
            settlement: set.id,
            provider,
            receiver: *to,
            minutes: *minutes,
            service: service.clone(),
            date: *date,
            confirmed,
        })
    }

    /// The JSON form, envelopes in hex.
    pub fn to_json(&self) -> String {
        let wire = Wire {
            format: RECEIPT_FORMAT.to_string(),
            community: self.community,
            attestation: hex::encode(self.attestation.encode()),
            settlement: hex::encode(self.settlement.encode()),
            provider_certificate: hex::encode(self.provider_cert.encode()),
            receiver_certificate: hex::encode(self.receiver_cert.encode()),
        };
        // A struct of strings always serializes.
        serde_json::to_string_pretty(&wire).unwrap_or_default()
    }

    /// Parses the JSON form. Parsing does not verify: call [`Receipt::verify`].
    pub fn from_json(json: &str) -> Result<Receipt, ReceiptError> {
        let wire: Wire =
            serde_json::from_str(json).map_err(|e| ReceiptError::Format(e.to_string()))?;
        if wire.format != RECEIPT_FORMAT {
            return Err(ReceiptError::Format(format!(
                "format {:?}, expected {RECEIPT_FORMAT:?}",
                wire.format
            )));
        }
        let env = |part: ReceiptPart, text: &str| {
            let bytes = hex::decode(text.trim())
                .map_err(|e| ReceiptError::Format(format!("{part}: {e}")))?;
            Envelope::decode(&bytes).map_err(|r| ReceiptError::Format(format!("{part}: {r}")))
        };
        Ok(Receipt {
            community: wire.community,
            attestation: env(ReceiptPart::Attestation, &wire.attestation)?,
            settlement: env(ReceiptPart::Settlement, &wire.settlement)?,
            provider_cert: env(ReceiptPart::ProviderCertificate, &wire.provider_certificate)?,
            receiver_cert: env(ReceiptPart::ReceiverCertificate, &wire.receiver_certificate)?,
        })
    }
}

fn wrong_kind(part: ReceiptPart, v: &Verified, expected: &'static str) -> ReceiptError {
    ReceiptError::WrongKind {
        part,
        found: v.record.kind(),
        expected,
    }
}

/// The member a certificate binds the writer of `signed` to.
fn cert_member(
    cert: &Verified,
    signed: &Verified,
    part: ReceiptPart,
) -> Result<MemberId, ReceiptError> {
    let certifies = match part {
        ReceiptPart::ProviderCertificate => ReceiptPart::Attestation,
        _ => ReceiptPart::Settlement,
    };
    // The gate already checked that a seq-1 certificate is signed by the identity it names.
    match certified_member(&cert.record) {
        Some(m) if cert.seq == 1 && cert.device == signed.device => Ok(m),
        Some(_) => Err(ReceiptError::CertificateMismatch { part, certifies }),
        None => Err(wrong_kind(part, cert, "genesis, join or device")),
    }
}
