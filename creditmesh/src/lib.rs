//! The `creditmesh` binary as a library: configuration, and starting services and the gateway
//! in one process or apart. The end-to-end tests start the mesh through this crate.

pub mod cli;
pub mod config;
pub mod demo;
pub mod keys;
pub mod memory;
pub mod mesh;
pub mod ops;
pub mod verify;

pub use config::Config;
pub use mesh::{Mesh, MeshOptions, all_services, start_mesh};
