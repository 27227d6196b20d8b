//! Integration tests: the real `hcctl` binary against a real MongoDB-wire server (FerretDB from
//! `scripts/stack up` in CI, or any server given by HCCTL_TEST_MONGODB_URI).

mod cli;
mod migrate;
mod util;
mod verify;
