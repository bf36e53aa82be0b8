//! Hostile-server tests (filled below).
