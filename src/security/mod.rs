//! Security of patient data that hcctl implements itself:
//!
//! - [`passwords`]: argon2id hashing (OWASP parameters), bcrypt verification and upgrade;
//! - [`app_users`]: the application's end users (`hcctl users …`);
//! - [`db_users`]: the database's least-privilege technical accounts (`hcctl db-users …`).
//!
//! Connection strings are redacted in [`crate::mongo`]; TLS options live there too.

pub mod app_users;
pub mod db_users;
pub mod passwords;
