//! A seeded schedule of faults (filled in below).
