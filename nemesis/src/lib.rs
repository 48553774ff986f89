//! Faults injected into a cluster: partitions, process faults, clock and packet faults, the
//! fault journal and heal. Not built yet: see issue 5.
