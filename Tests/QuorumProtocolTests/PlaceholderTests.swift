import QuorumProtocol
import Testing

@Test func protocolModuleLinks() { _ = WireProtocol.self }
