//! `key_context`: values for key templates' `{@:get(name)}`.

use std::future::Future;

use crate::key::{render, KeyPart};

tokio::task_local! {
    static KEY_CONTEXT: Vec<(String, String)>;
}

/// The `key_context` values of a task, captured by [`super::Scopes`].
#[derive(Clone, Default)]
pub(super) struct ContextValues(Vec<(String, String)>);

impl ContextValues {
    pub(super) fn current() -> ContextValues {
        ContextValues(KEY_CONTEXT.try_with(Clone::clone).unwrap_or_default())
    }

    pub(super) async fn scope<F: Future>(self, future: F) -> F::Output {
        KEY_CONTEXT.scope(self.0, future).await
    }
}

/// Runs `future` with `values` available to key templates as
/// `{@:get(name)}`. Scopes nest (inner values win) and are task-local: they
/// cover every `.await` inside `future`, not tasks it spawns (see
/// [the module docs](super)).
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// use cashews_core::scope::{key_context, write_context};
/// let key = key_context([("tenant", "acme")], async {
///     let mut key = String::from("report:");
///     write_context(&mut key, "tenant");
///     key
/// })
/// .await;
/// assert_eq!(key, "report:acme");
/// # }
/// ```
pub async fn key_context<F: Future, K: Into<String>, V: KeyPart>(
    values: impl IntoIterator<Item = (K, V)>,
    future: F,
) -> F::Output {
    let mut all = KEY_CONTEXT.try_with(Clone::clone).unwrap_or_default();
    all.extend(values.into_iter().map(|(k, v)| (k.into(), render(&v))));
    KEY_CONTEXT.scope(all, future).await
}

/// `{@:get(name)}`: appends the enclosing [`key_context`]'s value of
/// `name` to `out`, or nothing.
pub fn write_context(out: &mut String, name: &str) {
    let _ = KEY_CONTEXT.try_with(|values| {
        if let Some((_, value)) = values.iter().rev().find(|(k, _)| k == name) {
            out.push_str(value);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn key_context_nests_and_ends() {
        let read = || {
            let mut out = String::new();
            write_context(&mut out, "tenant");
            out
        };
        assert_eq!(read(), "");
        let (outer, inner) = key_context([("tenant", "a")], async {
            let inner = key_context([("tenant", "b")], async { read() }).await;
            (read(), inner)
        })
        .await;
        assert_eq!((outer.as_str(), inner.as_str()), ("a", "b"));
    }
}
