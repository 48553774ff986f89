//! How to reach nodes: cluster files, SSH sessions, providers. Not built yet: see issue 4.
