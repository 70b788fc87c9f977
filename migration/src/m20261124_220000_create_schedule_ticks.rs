use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum ScheduleTicks {
    Table,
    ProjectId,
    TickAt,
    ClaimedBy,
    ClaimedAt,
}

/// One row per (project, cron tick), inserted by the replica that runs the
/// tick: with several replicas on one database, the primary key lets exactly
/// one of them claim each tick.
#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(ScheduleTicks::Table)
                    .if_not_exists()
                    .col(big_integer(ScheduleTicks::ProjectId))
                    // The tick's scheduled time, Unix milliseconds.
                    .col(big_integer(ScheduleTicks::TickAt))
                    .col(string(ScheduleTicks::ClaimedBy))
                    .col(timestamp_with_time_zone(ScheduleTicks::ClaimedAt))
                    .primary_key(
                        Index::create()
                            .col(ScheduleTicks::ProjectId)
                            .col(ScheduleTicks::TickAt),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(
                Table::drop()
                    .table(ScheduleTicks::Table)
                    .if_exists()
                    .to_owned(),
            )
            .await
    }
}
