//! `loupe serve --demo`: a project of real e-mails (SpamAssassin, PDDL-1.0)
//! with a few seed labels, trained once, so a newcomer sees the loop at work.
use crate::db::{self, items::NewItem};
use crate::domain::{ProjectRequest, ProjectSpec};
use crate::state::AppState;
use crate::training::{self, Trigger};
use anyhow::Context;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

pub const DEMO_PROJECT: &str = "spam-demo";
const DEMO_ITEMS: usize = 2000;
const SEEDS_PER_CLASS: usize = 10;

#[derive(serde::Deserialize)]
struct Row {
    external_id: String,
    text: String,
    label: String,
}

pub async fn load(state: &AppState, path: &Path) -> anyhow::Result<()> {
    if db::projects::list(&state.db)
        .await?
        .iter()
        .any(|p| p.name == DEMO_PROJECT)
    {
        tracing::info!("demo project exists; leaving it as it is");
        return Ok(());
    }
    let file = std::fs::File::open(path).with_context(|| {
        format!(
            "opening demo data {} (run from the repository root or pass --demo-data)",
            path.display()
        )
    })?;
    let reader: Box<dyn Read> = if path.extension().is_some_and(|e| e == "gz") {
        Box::new(flate2::read::GzDecoder::new(file))
    } else {
        Box::new(file)
    };
    let mut seeds = std::collections::HashMap::<String, usize>::new();
    let mut rows = Vec::new();
    for line in BufReader::new(reader).lines().take(DEMO_ITEMS) {
        let r: Row = serde_json::from_str(&line?)?;
        let n = seeds.entry(r.label.clone()).or_default();
        let label = (*n < SEEDS_PER_CLASS).then(|| r.label.clone());
        *n += 1;
        rows.push(NewItem {
            external_id: r.external_id,
            text: Some(r.text),
            features: None,
            meta: None,
            label,
        });
    }
    let spec = ProjectSpec::create(ProjectRequest {
        name: Some(DEMO_PROJECT.into()),
        labels: Some(vec!["ham".into(), "spam".into()]),
        retrain_cron: Some(Some("*/30 * * * * *".into())),
        min_new_labels: Some(10),
        ..Default::default()
    })
    .map_err(anyhow::Error::msg)?;
    let p = db::projects::create(&state.db, spec.to_fields()).await?;
    state
        .scheduler
        .sync_project(p.id, p.retrain_cron.as_deref())
        .await?;
    let out = db::items::import(&state.db, p.id, None, rows, (0, "demo"), |_| 0.0).await?;
    training::train_project(state, p.id, Trigger::Api).await?;
    tracing::info!(
        project = DEMO_PROJECT,
        items = out.inserted,
        seed_labels = out.labeled,
        "demo project loaded and trained"
    );
    Ok(())
}
