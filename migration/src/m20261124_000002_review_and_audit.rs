use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Tokens {
    Table,
    Senior,
}

#[derive(DeriveIden)]
enum Projects {
    Table,
    Rules,
    AuditShare,
    BlindShare,
    LabelsPerItem,
}

#[derive(DeriveIden)]
enum Items {
    Table,
    Tier,
    Blind,
    Audit,
}

#[derive(DeriveIden)]
enum RoutingDaily {
    Table,
    ProjectId,
    Day,
    Route,
    N,
}

#[derive(DeriveIden)]
enum Decisions {
    Table,
    Id,
    ProjectId,
    ItemId,
    LabelId,
    Actor,
    Action,
    Label,
    Suggestion,
    SuggestionShown,
    ModelVersion,
    CreatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite's ALTER TABLE adds one at a time.
        manager
            .alter_table(
                Table::alter()
                    .table(Tokens::Table)
                    .add_column(boolean(Tokens::Senior).default(false))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Projects::Table)
                    .add_column(json_null(Projects::Rules))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Projects::Table)
                    .add_column(double(Projects::AuditShare).default(0.0))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Projects::Table)
                    .add_column(double(Projects::BlindShare).default(0.0))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Projects::Table)
                    .add_column(integer(Projects::LabelsPerItem).default(1))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Items::Table)
                    .add_column(string_null(Items::Tier))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Items::Table)
                    .add_column(boolean(Items::Blind).default(false))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Items::Table)
                    .add_column(boolean(Items::Audit).default(false))
                    .to_owned(),
            )
            .await?;

        // Predictions counted per day and route (the routing-volume plot).
        manager
            .create_table(
                Table::create()
                    .table(RoutingDaily::Table)
                    .if_not_exists()
                    .col(big_integer(RoutingDaily::ProjectId))
                    .col(string(RoutingDaily::Day))
                    .col(string(RoutingDaily::Route))
                    .col(big_integer(RoutingDaily::N))
                    .primary_key(
                        Index::create()
                            .col(RoutingDaily::ProjectId)
                            .col(RoutingDaily::Day)
                            .col(RoutingDaily::Route),
                    )
                    .to_owned(),
            )
            .await?;

        // The audit trail: every decision, appended, never updated.
        manager
            .create_table(
                Table::create()
                    .table(Decisions::Table)
                    .if_not_exists()
                    .col(big_pk_auto(Decisions::Id))
                    .col(big_integer(Decisions::ProjectId))
                    .col(big_integer(Decisions::ItemId))
                    .col(big_integer_null(Decisions::LabelId))
                    .col(string(Decisions::Actor))
                    .col(string(Decisions::Action))
                    .col(string_null(Decisions::Label))
                    .col(string_null(Decisions::Suggestion))
                    .col(boolean(Decisions::SuggestionShown))
                    .col(integer_null(Decisions::ModelVersion))
                    .col(timestamp_with_time_zone(Decisions::CreatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_decisions_project")
                    .table(Decisions::Table)
                    .col(Decisions::ProjectId)
                    .col(Decisions::Id)
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Decisions::Table).if_exists().to_owned())
            .await?;
        manager
            .drop_table(
                Table::drop()
                    .table(RoutingDaily::Table)
                    .if_exists()
                    .to_owned(),
            )
            .await?;
        for (t, c) in [
            (Items::Table.into_iden(), Items::Audit.into_iden()),
            (Items::Table.into_iden(), Items::Blind.into_iden()),
            (Items::Table.into_iden(), Items::Tier.into_iden()),
            (
                Projects::Table.into_iden(),
                Projects::BlindShare.into_iden(),
            ),
            (
                Projects::Table.into_iden(),
                Projects::AuditShare.into_iden(),
            ),
            (Projects::Table.into_iden(), Projects::Rules.into_iden()),
            (Tokens::Table.into_iden(), Tokens::Senior.into_iden()),
        ] {
            manager
                .alter_table(Table::alter().table(t).drop_column(c).to_owned())
                .await?;
        }
        Ok(())
    }
}
