//! Rank epochs: a rescore writes its ranking best-first under a new epoch,
//! and the queue serves the newest epoch first. So the head of a new ranking
//! leads the queue as soon as it is written, while the rest of a large pool
//! is still being rewritten, and no stale score from the previous model can
//! slip in between.
//!
//! Also an index for reading a project's pool page by page in id order
//! (what a rescore does): without it SQLite walks the queue index and sorts
//! every unlabelled item for each page.
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Items {
    Table,
    ProjectId,
    Status,
    RankEpoch,
    Score,
    Id,
}

const OLD_QUEUE_INDEX: &str = "ix_items_queue";
const QUEUE_INDEX: &str = "ix_items_queue_epoch";
const PAGES_INDEX: &str = "ix_items_pages";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Items::Table)
                    .add_column(big_integer(Items::RankEpoch).default(0))
                    .to_owned(),
            )
            .await?;
        manager
            .drop_index(
                Index::drop()
                    .name(OLD_QUEUE_INDEX)
                    .table(Items::Table)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name(QUEUE_INDEX)
                    .table(Items::Table)
                    .col(Items::ProjectId)
                    .col(Items::Status)
                    .col((Items::RankEpoch, IndexOrder::Desc))
                    .col((Items::Score, IndexOrder::Desc))
                    .col(Items::Id)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name(PAGES_INDEX)
                    .table(Items::Table)
                    .col(Items::ProjectId)
                    .col(Items::Status)
                    .col(Items::Id)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name(PAGES_INDEX)
                    .table(Items::Table)
                    .to_owned(),
            )
            .await?;
        manager
            .drop_index(
                Index::drop()
                    .name(QUEUE_INDEX)
                    .table(Items::Table)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name(OLD_QUEUE_INDEX)
                    .table(Items::Table)
                    .col(Items::ProjectId)
                    .col(Items::Status)
                    .col((Items::Score, IndexOrder::Desc))
                    .col(Items::Id)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Items::Table)
                    .drop_column(Items::RankEpoch)
                    .to_owned(),
            )
            .await
    }
}
