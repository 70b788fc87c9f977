//! loupe's database schema. Each migration uses the schema builder only (no
//! entities), so it stays valid whatever the entities become.
pub use sea_orm_migration::prelude::*;

mod m20261124_000001_create_tables;
mod m20261124_000002_review_and_audit;
mod m20261124_000003_gold_items;
mod m20261124_220000_create_schedule_ticks;
mod m20261125_000001_rank_epoch;
mod m20261201_000001_pool_confidence;
mod m20261207_000001_selection;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261124_000001_create_tables::Migration),
            Box::new(m20261124_000002_review_and_audit::Migration),
            Box::new(m20261124_000003_gold_items::Migration),
            Box::new(m20261124_220000_create_schedule_ticks::Migration),
            Box::new(m20261125_000001_rank_epoch::Migration),
            Box::new(m20261201_000001_pool_confidence::Migration),
            Box::new(m20261207_000001_selection::Migration),
        ]
    }
}
