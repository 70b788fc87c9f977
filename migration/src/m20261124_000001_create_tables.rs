use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Tokens {
    Table,
    Id,
    Name,
    Role,
    TokenHash,
    CreatedAt,
    RevokedAt,
}

#[derive(DeriveIden)]
enum Projects {
    Table,
    Id,
    Name,
    Labels,
    Strategy,
    RetrainCron,
    MinNewLabels,
    AutoThreshold,
    ReviewThreshold,
    TargetPrecision,
    LeaseSeconds,
    FeatureLen,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Items {
    Table,
    Id,
    ProjectId,
    ExternalId,
    Text,
    Features,
    Meta,
    Status,
    Score,
    LeaseOwner,
    LeaseExpiresAt,
    PredLabel,
    PredConfidence,
    PredVersion,
    FinalLabel,
    DecidedBy,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Labels {
    Table,
    Id,
    ProjectId,
    ItemId,
    Label,
    AnnotatorId,
    Annotator,
    Source,
    DurationMs,
    CreatedAt,
    UndoneAt,
}

#[derive(DeriveIden)]
enum ModelVersions {
    Table,
    Id,
    ProjectId,
    Version,
    TrainedAt,
    NLabels,
    LabelWatermark,
    Algorithm,
    Metrics,
    AutoThreshold,
    ReviewThreshold,
    Active,
    Model,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Tokens::Table)
                    .if_not_exists()
                    .col(big_pk_auto(Tokens::Id))
                    .col(string(Tokens::Name))
                    .col(string(Tokens::Role))
                    .col(string_uniq(Tokens::TokenHash))
                    .col(timestamp_with_time_zone(Tokens::CreatedAt))
                    .col(timestamp_with_time_zone_null(Tokens::RevokedAt))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Projects::Table)
                    .if_not_exists()
                    .col(big_pk_auto(Projects::Id))
                    .col(string_uniq(Projects::Name))
                    .col(json(Projects::Labels))
                    .col(string(Projects::Strategy))
                    .col(string_null(Projects::RetrainCron))
                    .col(integer(Projects::MinNewLabels))
                    .col(double(Projects::AutoThreshold))
                    .col(double(Projects::ReviewThreshold))
                    .col(double_null(Projects::TargetPrecision))
                    .col(integer(Projects::LeaseSeconds))
                    .col(integer_null(Projects::FeatureLen))
                    .col(timestamp_with_time_zone(Projects::CreatedAt))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Items::Table)
                    .if_not_exists()
                    .col(big_pk_auto(Items::Id))
                    .col(big_integer(Items::ProjectId))
                    .col(string(Items::ExternalId))
                    .col(text_null(Items::Text))
                    .col(blob_null(Items::Features))
                    .col(json_null(Items::Meta))
                    .col(string(Items::Status))
                    .col(double(Items::Score))
                    .col(big_integer_null(Items::LeaseOwner))
                    .col(big_integer_null(Items::LeaseExpiresAt))
                    .col(string_null(Items::PredLabel))
                    .col(double_null(Items::PredConfidence))
                    .col(integer_null(Items::PredVersion))
                    .col(string_null(Items::FinalLabel))
                    .col(string_null(Items::DecidedBy))
                    .col(timestamp_with_time_zone(Items::CreatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(Items::Table, Items::ProjectId)
                            .to(Projects::Table, Projects::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ux_items_project_external")
                    .table(Items::Table)
                    .col(Items::ProjectId)
                    .col(Items::ExternalId)
                    .unique()
                    .to_owned(),
            )
            .await?;
        // The queue: next items of a project in a status, most informative first.
        manager
            .create_index(
                Index::create()
                    .name("ix_items_queue")
                    .table(Items::Table)
                    .col(Items::ProjectId)
                    .col(Items::Status)
                    .col((Items::Score, IndexOrder::Desc))
                    .col(Items::Id)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Labels::Table)
                    .if_not_exists()
                    .col(big_pk_auto(Labels::Id))
                    .col(big_integer(Labels::ProjectId))
                    .col(big_integer(Labels::ItemId))
                    .col(string(Labels::Label))
                    .col(big_integer(Labels::AnnotatorId))
                    .col(string(Labels::Annotator))
                    .col(string(Labels::Source))
                    .col(big_integer_null(Labels::DurationMs))
                    .col(timestamp_with_time_zone(Labels::CreatedAt))
                    .col(timestamp_with_time_zone_null(Labels::UndoneAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(Labels::Table, Labels::ItemId)
                            .to(Items::Table, Items::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_labels_item")
                    .table(Labels::Table)
                    .col(Labels::ItemId)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_labels_project")
                    .table(Labels::Table)
                    .col(Labels::ProjectId)
                    .col(Labels::Id)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(ModelVersions::Table)
                    .if_not_exists()
                    .col(big_pk_auto(ModelVersions::Id))
                    .col(big_integer(ModelVersions::ProjectId))
                    .col(integer(ModelVersions::Version))
                    .col(timestamp_with_time_zone(ModelVersions::TrainedAt))
                    .col(integer(ModelVersions::NLabels))
                    .col(big_integer(ModelVersions::LabelWatermark))
                    .col(string(ModelVersions::Algorithm))
                    .col(json(ModelVersions::Metrics))
                    .col(double(ModelVersions::AutoThreshold))
                    .col(double(ModelVersions::ReviewThreshold))
                    .col(boolean(ModelVersions::Active))
                    .col(blob(ModelVersions::Model))
                    .foreign_key(
                        ForeignKey::create()
                            .from(ModelVersions::Table, ModelVersions::ProjectId)
                            .to(Projects::Table, Projects::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ux_model_versions_project_version")
                    .table(ModelVersions::Table)
                    .col(ModelVersions::ProjectId)
                    .col(ModelVersions::Version)
                    .unique()
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for t in [
            ModelVersions::Table.into_iden(),
            Labels::Table.into_iden(),
            Items::Table.into_iden(),
            Projects::Table.into_iden(),
            Tokens::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(t).if_exists().to_owned())
                .await?;
        }
        Ok(())
    }
}
