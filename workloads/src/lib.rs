//! Databases (install/start/kill/pause on nodes) and workloads (clients and op generators).
//! Not built yet: see issue 6.
