//! percept-server: the pipeline as a long-running HTTP service (being built).
