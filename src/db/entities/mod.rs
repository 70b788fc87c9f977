//! sea-orm entities: the shape of the tables, nothing more.
pub mod decisions;
pub mod items;
pub mod labels;
pub mod model_versions;
pub mod projects;
pub mod tokens;
