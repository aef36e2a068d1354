import Testing
@testable import StaticPods
