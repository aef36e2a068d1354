import Testing
@testable import ResourceLedger
