//! Multi-node integration tests: real swarms on 127.0.0.1 (or in network namespaces the
//! test creates), real sled stores in temporary directories.

mod api;
mod catch_up;
mod converge;
mod crash;
mod equivocation;
mod hostile;
mod mdns;
mod partition;
mod psk;
mod restart;
mod sync2;
