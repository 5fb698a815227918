//! basalt-debian: exact dpkg version ordering, deb822 control-data parsing,
//! package relationship parsing, Packages indices and a deterministic
//! dependency resolver. See README.md for the algorithm.

pub mod control;
pub mod index;
pub mod package;
pub mod relation;
pub mod resolve;
pub mod version;

pub use control::{ControlError, ControlErrorKind, Field, Paragraph, ParseOptions};
pub use index::{AddStats, IndexError, PackageIndex, Provider};
pub use package::{MultiArch, Package, PackageError, PackageErrorKind, Priority};
pub use relation::{ArchQual, Constraint, Group, Op, Relation, RelationError};
pub use resolve::{
    DepKind, Reason, Request, Resolution, ResolveError, Resolved, Waived, check_closure, resolve,
};
pub use version::{Version, VersionError};
