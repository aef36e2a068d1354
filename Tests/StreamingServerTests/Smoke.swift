import Testing
@testable import StreamingServer
