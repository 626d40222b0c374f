//! Tags: named groups of keys deleted together.
//!
//! Tagging `key` with `tag` adds `key` to the set `_tags:tag:{tag}` and `tag`
//! to the set `_tags:key:{key}`. Both sets live as long as their
//! longest-lived member (`set_add` only extends a set's TTL), so a tag never
//! forgets a key that is still cached.
//!
//! The per-key set is the authority: [`Cache::delete_tags`] deletes a member
//! of a tag only if the key still carries that tag, and deleting a key (by
//! `delete`, `delete_many`, `delete_match` or an invalidation) deletes its
//! per-key set. So a key deleted and later stored again without the tag is
//! not deleted with the tag, although the tag's set may still name it.
//!
//! Deleting a key therefore costs one more command (a `delete_many` of its
//! per-key set, sent concurrently with the delete), whether it was tagged
//! or not: another process may have tagged it.
//!
//! All tag bookkeeping lives under [`TAGS_PREFIX`], so a dedicated backend
//! for tags is one [`Cache::setup_tags`] (or `setup_prefix("_tags:", url)`).

use super::Cache;
use futures_util::future::{try_join, try_join_all};

use crate::error::{Error, Result};
pub use crate::layout::TAGS_PREFIX;
pub(crate) use crate::layout::{is_tags_key, key_tags_key, tag_key};
use crate::ttl::IntoTtl;

/// How many members of a tag are deleted per round.
const DELETE_BATCH: usize = 500;

/// The tag records to delete with `keys` (none for bookkeeping keys).
pub(crate) fn records_of<'k>(keys: impl IntoIterator<Item = &'k str>) -> Vec<String> {
    keys.into_iter()
        .filter(|k| !is_tags_key(k))
        .map(key_tags_key)
        .collect()
}

impl Cache {
    /// Serves the tag bookkeeping (every key under [`TAGS_PREFIX`]) from the
    /// backend at `url`, e.g. a Redis shared by every process while values
    /// stay in memory.
    pub fn setup_tags(&self, url: &str) -> Result<()> {
        self.setup_prefix(TAGS_PREFIX, url)
    }

    /// Records `key` under each of `tags`, for `ttl` (the key's own TTL:
    /// the tag remembers the key at least as long). `cache.set(..).tags(..)`
    /// and `#[cache(tags = [...])]` call this after storing.
    pub async fn tag(&self, key: &str, tags: &[&str], ttl: impl IntoTtl) -> Result<()> {
        if tags.is_empty() {
            return Ok(());
        }
        let ttl = ttl.into_ttl()?;
        let by_tag = tags
            .iter()
            .map(|tag| async move { self.set_add(&tag_key(tag), &[key], ttl).await });
        let key_tags = key_tags_key(key);
        try_join(try_join_all(by_tag), self.set_add(&key_tags, tags, ttl)).await?;
        Ok(())
    }

    /// Deletes every key carrying any of `tags`; returns how many keys were
    /// deleted. The tags' sets are emptied.
    pub async fn delete_tags(&self, tags: &[&str]) -> Result<u64> {
        let mut deleted = 0;
        for tag in tags {
            let set = tag_key(tag);
            loop {
                let members = self.set_pop(&set, DELETE_BATCH).await?;
                if members.is_empty() {
                    break;
                }
                // Only a key that still carries the tag goes.
                let gone = try_join_all(members.iter().map(|member| async move {
                    Ok::<_, Error>(
                        self.set_remove(&key_tags_key(member), &[tag]).await? > 0
                            && self.delete(member).await?,
                    )
                }))
                .await?;
                deleted += gone.into_iter().filter(|gone| *gone).count() as u64;
            }
        }
        Ok(deleted)
    }
}
