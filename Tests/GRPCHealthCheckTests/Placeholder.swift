import Testing
@testable import GRPCHealthCheck
