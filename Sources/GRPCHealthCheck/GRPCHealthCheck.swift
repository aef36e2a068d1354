// The gRPC health check client (being written).
