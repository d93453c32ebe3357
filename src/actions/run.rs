//! `run`: execute a program with an argv list, never through a shell. Each element may be a
//! template; a rendered value becomes exactly one argv element, byte for byte. Values with
//! NUL or newline are refused. Mutating.
//!
//! ```yaml
//! - id: restart_service
//!   run: ["systemctl", "restart", "{{ params.unit }}"]
//!   limit: { max: 3, per: 1h }
//! ```
