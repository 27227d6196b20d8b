//! Integration tests: the real `hcctl` binary against real servers — a MongoDB-wire server
//! (FerretDB from `scripts/stack up` in CI, or any server given by HCCTL_TEST_MONGODB_URI) and an
//! AWS emulator (ministack from `scripts/stack up`, or any endpoint in AWS_ENDPOINT_URL*).

mod awsenv;
mod backup;
mod cli;
mod cloud;
mod cost;
mod deploy;
mod dump;
mod ingest;
mod least_privilege;
mod mangled;
mod migrate;
mod monitor;
mod outputs;
mod packaging;
mod run;
mod security;
mod util;
mod verify;
