//! The generated corpus (next).
