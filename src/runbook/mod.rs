//! The runbook format: loading, compiling, and the types of each phase.
//!
//! `load` reads a file under a budget into `raw` types (as written, with spans); `compile`
//! resolves and checks them into `model` types ([`Runbook`]); `catalog` does this for a whole
//! directory with its `policy.yaml`. Everything here is synchronous and touches only the files
//! it is given.

pub mod catalog;
pub mod compile;
pub mod cron;
pub mod diagnostic;
pub mod expr;
pub mod load;
pub mod model;
pub mod node;
pub mod param;
pub mod policy;
pub mod raw;
pub mod schema;
pub mod value;

pub use catalog::Catalog;
pub use diagnostic::{Diagnostic, SourceFile};
pub use model::Runbook;
pub use policy::Policy;
