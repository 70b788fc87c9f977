//! Domain types at the boundary: each has a private representation and a
//! fallible `parse`, so nothing past a handler sees an unchecked value.
mod gold;
mod item;
mod project;
mod role;
mod rules;
mod selection;
mod spec;

pub use gold::*;
pub use item::*;
pub use project::*;
pub use role::Role;
pub use rules::*;
pub use selection::Selection;
pub use spec::*;
