//! Watching the running system: `hcctl logs` (the containers' CloudWatch log events, followed)
//! and `hcctl status` (the service, the alarms, the recent runs and the backups on one screen).
pub mod logs;
pub mod status;
