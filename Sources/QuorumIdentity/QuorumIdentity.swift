/// The cluster's own certificate authority and the identities it vouches for: which role (node,
/// proxy, operator) and which node id a certificate carries. Issue 5 fills this in.
public enum ClusterIdentity {}
