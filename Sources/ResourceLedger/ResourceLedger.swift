// The resource ledger (being written).
