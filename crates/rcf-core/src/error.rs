use std::fmt;

/// Everything that can go wrong in the engine. Messages are meant for end users.
#[derive(Debug, Clone, PartialEq)]
pub enum RcfError {
    /// A hyperparameter is out of its allowed range (named as SageMaker names it).
    InvalidHyperparameter {
        name: &'static str,
        allowed: String,
        value: String,
    },
    /// Training data has no rows.
    NoRows,
    /// Training data (or a forest) has zero feature dimensions.
    NoDimensions,
    /// Training data (or a forest) has more feature dimensions than a cut can name.
    TooManyDimensions { got: usize, max: usize },
    /// A training value or point is NaN or infinite.
    NonFinite {
        row: usize,
        column: usize,
        value: f32,
    },
    /// A point does not have the forest's number of dimensions.
    DimensionMismatch { expected: usize, got: usize },
    /// The bytes do not start with the model magic.
    BadMagic,
    /// The model was written in a format version this build cannot read.
    UnsupportedVersion { found: u32, supported: u32 },
    /// The model bytes end early.
    Truncated { needed: usize, available: usize },
    /// The checksum over the model bytes does not match.
    ChecksumMismatch { stored: u64, computed: u64 },
    /// The bytes parse but describe an impossible forest.
    Corrupt(String),
}

impl fmt::Display for RcfError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RcfError::InvalidHyperparameter {
                name,
                allowed,
                value,
            } => write!(
                f,
                "hyperparameter `{name}` must be {allowed}, but the given value is {value}"
            ),
            RcfError::NoRows => write!(f, "training data has no rows: at least one is needed"),
            RcfError::NoDimensions => write!(
                f,
                "training data has no feature columns (`feature_dim` must be at least 1)"
            ),
            RcfError::TooManyDimensions { got, max } => write!(
                f,
                "training data has {got} feature columns, more than the {max} a model can hold: \
                 reduce the features (e.g. drop or combine columns) in preprocessing"
            ),
            RcfError::NonFinite { row, column, value } => write!(
                f,
                "value {value} at row {row}, column {column} is not a finite number (NaN and infinities are not allowed)"
            ),
            RcfError::DimensionMismatch { expected, got } => write!(
                f,
                "point has {got} feature(s) but the model expects `feature_dim` = {expected}"
            ),
            RcfError::BadMagic => write!(
                f,
                "not a Random Cut Forest model: the bytes do not start with the model signature"
            ),
            RcfError::UnsupportedVersion { found, supported } => write!(
                f,
                "model format version {found} is not supported (this build reads version {supported})"
            ),
            RcfError::Truncated { needed, available } => write!(
                f,
                "model is truncated: {needed} bytes needed but only {available} available"
            ),
            RcfError::ChecksumMismatch { stored, computed } => write!(
                f,
                "model is corrupted: checksum mismatch (stored {stored:016x}, computed {computed:016x})"
            ),
            RcfError::Corrupt(why) => write!(f, "model is corrupted: {why}"),
        }
    }
}

impl std::error::Error for RcfError {}
