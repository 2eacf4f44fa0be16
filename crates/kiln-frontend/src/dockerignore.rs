//! `.dockerignore` matching with the semantics of Docker's pattern matcher.
