//! The store under damage: what a damaged store reports (`damage`) and what `repair`
//! restores (`repair`), on real sled stores written by separate processes.

mod damage;
mod repair;
