import Testing
@testable import KubeletServer
