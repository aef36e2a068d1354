// The static pod source (being written).
