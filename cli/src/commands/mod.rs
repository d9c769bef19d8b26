//! One module per group of commands; each command returns a [`crate::app::Report`].

pub(crate) mod aid;
pub(crate) mod audit;
pub(crate) mod demo;
pub(crate) mod device;
pub(crate) mod governance;
pub(crate) mod insight;
pub(crate) mod key;
pub(crate) mod membership;
pub(crate) mod peer;
pub(crate) mod pools;
pub(crate) mod purchase;
pub(crate) mod reach;
pub(crate) mod relay;
pub(crate) mod repair;
pub(crate) mod service;
pub(crate) mod shell;
pub(crate) mod support;
pub(crate) mod timebank;
pub(crate) mod ui;
pub(crate) mod up;
