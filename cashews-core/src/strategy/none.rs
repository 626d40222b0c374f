//! `condition = not_none`: whether a value is `None`, for any serde type.

use serde::Serialize;

use crate::codec::shape::{shape, Shape};

/// Whether `value` serializes as `None` at the top level (an `Option::None`,
/// also behind a newtype or a reference). Any other value is not none.
pub fn is_none<T: Serialize + ?Sized>(value: &T) -> bool {
    matches!(shape(value, false), Shape::None)
}

#[cfg(test)]
mod tests {
    use super::is_none;

    #[test]
    fn detects_top_level_none_only() {
        assert!(is_none(&None::<u8>));
        assert!(!is_none(&Some(0u8)));
        assert!(!is_none(&Some(None::<u8>)));
        assert!(!is_none(&0u8));
        assert!(!is_none(&false));
        assert!(!is_none(&vec![None::<u8>]));
        assert!(!is_none(&()));
    }
}
