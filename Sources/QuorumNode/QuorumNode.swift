/// The node runtime: transport, membership, verdicts, signing service, log replication (DESIGN.md
/// §3). Issue 5 starts it with the mutual-TLS transport.
public enum NodeRuntime {}
