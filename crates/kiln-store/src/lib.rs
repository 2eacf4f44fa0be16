//! The store: kiln's on-disk state shared by several kiln processes. It owns the SQLite
//! (WAL) metadata database, the content-addressed blob directory and atomic writes.
