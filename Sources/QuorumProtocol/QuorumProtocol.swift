/// Wire formats shared by node, proxy and CLI: frames, messages, receipts. Issue 5 fills this in.
public enum WireProtocol {}
