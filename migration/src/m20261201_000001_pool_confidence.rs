//! The pool's confidence histogram under a model version, counted by the
//! rescore that ranked the pool with it (every unlabelled item, in memory),
//! so a million-item pool need not have every row's prediction rewritten
//! for the dashboard to show it.
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum ModelVersions {
    Table,
    PoolConfidence,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(ModelVersions::Table)
                    .add_column(json_null(ModelVersions::PoolConfidence))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(ModelVersions::Table)
                    .drop_column(ModelVersions::PoolConfidence)
                    .to_owned(),
            )
            .await
    }
}
