use super::entities::tokens::{self, Entity as Tokens};
use chrono::Utc;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder,
    Set,
};
use sha2::{Digest, Sha256};

/// Tokens are stored as SHA-256 digests, never in plaintext. A token is 32
/// random bytes, so a fast hash is enough (no password stretching needed).
pub fn hash_token(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

pub fn generate_secret() -> String {
    use rand::RngCore;
    let mut b = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut b);
    format!("lp_{}", hex::encode(b))
}

/// The live token whose digest matches, if any. The lookup goes through a
/// unique index on the digest, so comparing secrets never happens in our code.
pub async fn find_live(
    db: &impl ConnectionTrait,
    secret: &str,
) -> Result<Option<tokens::Model>, DbErr> {
    find_live_by_digest(db, &hash_token(secret)).await
}

/// [`find_live`] by the secret's digest.
pub async fn find_live_by_digest(
    db: &impl ConnectionTrait,
    digest: &str,
) -> Result<Option<tokens::Model>, DbErr> {
    Tokens::find()
        .filter(tokens::Column::TokenHash.eq(digest))
        .filter(tokens::Column::RevokedAt.is_null())
        .one(db)
        .await
}

pub async fn create(
    db: &impl ConnectionTrait,
    name: &str,
    role: &str,
    senior: bool,
    secret: &str,
) -> Result<tokens::Model, DbErr> {
    tokens::ActiveModel {
        name: Set(name.to_string()),
        role: Set(role.to_string()),
        token_hash: Set(hash_token(secret)),
        created_at: Set(Utc::now()),
        revoked_at: Set(None),
        senior: Set(senior),
        ..Default::default()
    }
    .insert(db)
    .await
}

pub async fn list(db: &impl ConnectionTrait) -> Result<Vec<tokens::Model>, DbErr> {
    Tokens::find()
        .order_by_asc(tokens::Column::Id)
        .all(db)
        .await
}

/// Revokes a token; false when there is no such token.
/// What a revocation did.
#[derive(Debug, PartialEq, Eq)]
pub enum Revoked {
    Done,
    NotFound,
    /// Refused: it is the last live admin token, and nobody could manage
    /// the server after it.
    LastAdmin,
}

pub async fn revoke(db: &sea_orm::DatabaseConnection, id: i64) -> Result<Revoked, DbErr> {
    use sea_orm::{QuerySelect, TransactionTrait};
    let txn = db.begin().await?;
    let Some(t) = Tokens::find_by_id(id).one(&txn).await? else {
        return Ok(Revoked::NotFound);
    };
    if t.revoked_at.is_none() {
        if t.role == "admin" {
            // The live admins, locked: two revocations at once cannot
            // each leave the other as the last one.
            let admins = Tokens::find()
                .filter(tokens::Column::Role.eq("admin"))
                .filter(tokens::Column::RevokedAt.is_null())
                .lock_exclusive()
                .all(&txn)
                .await?;
            if admins.iter().all(|a| a.id == t.id) {
                return Ok(Revoked::LastAdmin);
            }
        }
        let mut am: tokens::ActiveModel = t.into();
        am.revoked_at = Set(Some(Utc::now()));
        am.update(&txn).await?;
    }
    txn.commit().await?;
    Ok(Revoked::Done)
}

pub async fn any_live_admin(db: &impl ConnectionTrait) -> Result<bool, DbErr> {
    Ok(Tokens::find()
        .filter(tokens::Column::Role.eq("admin"))
        .filter(tokens::Column::RevokedAt.is_null())
        .one(db)
        .await?
        .is_some())
}

/// Makes sure `secret` is a live admin token: created if unknown, restored to
/// admin if it exists (the operator's environment is the authority).
pub async fn ensure_admin(db: &impl ConnectionTrait, secret: &str) -> Result<(), DbErr> {
    let existing = Tokens::find()
        .filter(tokens::Column::TokenHash.eq(hash_token(secret)))
        .one(db)
        .await?;
    match existing {
        Some(t) if t.role == "admin" && t.revoked_at.is_none() => Ok(()),
        Some(t) => {
            let mut am: tokens::ActiveModel = t.into();
            am.role = Set("admin".to_string());
            am.revoked_at = Set(None);
            am.update(db).await.map(|_| ())
        }
        None => create(db, "admin", "admin", true, secret).await.map(|_| ()),
    }
}
