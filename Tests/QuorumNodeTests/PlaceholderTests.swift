import QuorumNode
import Testing

@Test func nodeModuleLinks() { _ = NodeRuntime.self }
