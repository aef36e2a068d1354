import Testing
@testable import KubeNode
