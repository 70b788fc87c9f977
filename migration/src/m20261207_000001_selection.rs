//! How each item was chosen for labelling. `items.selection` is what the
//! newest ranking made of an unlabelled item (`cold_start`, `random` — a
//! uniform draw from the pool — or `active`; NULL: the import's placeholder
//! order); `labels.selection` is how the item reached the person who
//! labelled it (those kinds, or `review`, `audit`, `gold`, `import`,
//! `browse`). Estimates of the model's quality lean on the uniform draws,
//! the one unbiased sample among labels active learning chose. Labels from
//! before this migration have NULL.
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Items {
    Table,
    Selection,
}

#[derive(DeriveIden)]
enum Labels {
    Table,
    Selection,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Items::Table)
                    .add_column(string_null(Items::Selection))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Labels::Table)
                    .add_column(string_null(Labels::Selection))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Labels::Table)
                    .drop_column(Labels::Selection)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Items::Table)
                    .drop_column(Items::Selection)
                    .to_owned(),
            )
            .await
    }
}
