//! Names for learned parameters, derived from the path around them: the position after
//! `users` is `{user}`, GitHub's `repos/{owner}/{repo}` pair is recognised, and anything
//! else is `{name}`. Names never collide with the typed placeholders.

use super::segment::Placeholder;

/// What precedes a position: the last literal segment and how many parameters follow it.
#[derive(Debug, Clone, Copy, Default)]
pub struct NameCtx<'s> {
    pub literal: Option<&'s str>,
    pub params_after: u8,
}

impl<'s> NameCtx<'s> {
    /// The context after stepping over a literal segment.
    pub fn literal(segment: &'s str) -> Self {
        NameCtx {
            literal: Some(segment),
            params_after: 0,
        }
    }

    /// The context after stepping over a placeholder or parameter.
    pub fn param(self) -> Self {
        NameCtx {
            literal: self.literal,
            params_after: self.params_after.saturating_add(1),
        }
    }
}

/// Fallback name of a learned parameter.
pub const FALLBACK: &str = "name";

/// The name for a parameter at a position with this context.
pub fn param_name(ctx: NameCtx<'_>) -> String {
    let name = match (ctx.literal, ctx.params_after) {
        (Some("repos"), 0) => Some("owner".to_string()),
        (Some("repos"), 1) => Some("repo".to_string()),
        (Some(word), 0) => singular(word),
        _ => None,
    };
    match name {
        Some(n) if Placeholder::from_name(&n).is_none() && n != FALLBACK => n,
        _ => FALLBACK.to_string(),
    }
}

/// English singular of a plain lower-case word, or `None` when the word is not one.
fn singular(word: &str) -> Option<String> {
    let plain = word.len() >= 2 && word.bytes().all(|b| b.is_ascii_lowercase() || b == b'_');
    if !plain {
        return None;
    }
    let stem = if let Some(stem) = word.strip_suffix("ies") {
        format!("{stem}y")
    } else if ["ches", "shes", "sses", "xes"]
        .iter()
        .any(|s| word.ends_with(s))
    {
        word[..word.len() - 2].to_string()
    } else if word.ends_with("ss") || word.ends_with("us") {
        word.to_string()
    } else if let Some(stem) = word.strip_suffix('s') {
        stem.to_string()
    } else {
        word.to_string()
    };
    Some(stem)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn after(word: &str) -> String {
        param_name(NameCtx::literal(word))
    }

    #[test]
    fn a_plural_collection_names_its_member() {
        assert_eq!(after("users"), "user");
        assert_eq!(after("orgs"), "org");
        assert_eq!(after("branches"), "branch");
        assert_eq!(after("repositories"), "repository");
        assert_eq!(after("status"), "status");
    }

    #[test]
    fn repos_names_owner_then_repo() {
        let ctx = NameCtx::literal("repos");
        assert_eq!(param_name(ctx), "owner");
        assert_eq!(param_name(ctx.param()), "repo");
    }

    #[test]
    fn unnamable_positions_fall_back_to_name() {
        assert_eq!(param_name(NameCtx::default()), "name");
        assert_eq!(param_name(NameCtx::literal("users").param()), "name");
        assert_eq!(after("v1"), "name");
        assert_eq!(after("ids"), "name");
    }
}
