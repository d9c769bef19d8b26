//! Two-party hour receipts.
