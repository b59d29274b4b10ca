import QuorumIdentity
import Testing

@Test func identityModuleLinks() { _ = ClusterIdentity.self }
