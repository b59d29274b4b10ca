import Testing

@testable import QuorumPolicy

// MARK: - Helpers

private func bytes(_ text: String) -> [UInt8] { Array(text.utf8) }

private func text(_ bytes: [UInt8]) -> String { String(decoding: bytes, as: UTF8.self) }

private func paths(_ texts: [String]) -> [JSONPath] { texts.map { try! JSONPath($0) } }

private func obligations(
    redact: [String] = [], trim: [String] = [], blockIf: [PayloadRule] = [], maxBytes: Int? = nil
) -> ResponseObligations {
    ResponseObligations(redact: paths(redact), trim: paths(trim), blockIf: blockIf, maxBytes: maxBytes)
}

/// `sk-` followed by at least 20 letters or digits.
private let secretPattern = "sk-[A-Za-z0-9]{20,}"
private let secret = "sk-" + "AbCdEfGhIjKlMnOpQrStUvWxYz0123"

private func secretRule(_ path: String = "$.choices[*].message.content") -> PayloadRule {
    try! PayloadRule(path, op: .regex, operand: .string(secretPattern), quantifier: .any)
}

private let streamSecretRule = secretRule("$.choices[*].delta.content")

private func passed(_ result: ResponseResult) -> String? {
    if case .pass(let out) = result { return text(out) }
    return nil
}

private func blockReason(_ result: ResponseResult) -> ResponseBlockReason? {
    if case .block(let reason) = result { return reason }
    return nil
}

private let json = "application/json"

/// An OpenAI chat completion, spaced as the upstream sends it.
private let completion = """
    {
      "id": "chatcmpl-123",
      "object": "chat.completion",
      "created": 1700000000,
      "model": "gpt-4o-2024-08-06",
      "system_fingerprint": "fp_44709d6fcb",
      "choices": [
        {"index": 0, "message": {"role": "assistant", "content": "Hello there"}, "finish_reason": "stop"},
        {"index": 1, "message": {"role": "assistant", "content": "General Kenobi"}, "finish_reason": "stop"}
      ],
      "usage": {"prompt_tokens": 9, "completion_tokens": 12, "total_tokens": 21.0}
    }
    """

// MARK: - Bodies

@Suite("Response obligations on bodies")
struct ResponseObligationBodyTests {
    @Test("a body nothing changes passes byte for byte, whitespace and number spelling included")
    func unchangedBodyIsByteIdentical() {
        let rules = obligations(
            redact: ["$.nope", "$.choices[5].message"], trim: ["$.usage.absent", "$.choices[*].logprobs"],
            blockIf: [secretRule()], maxBytes: 10_000)
        #expect(rules.apply(toBody: bytes(completion), contentType: json) == .pass(bytes(completion)))
    }

    @Test("redact $.id and trim $.system_fingerprint re-encode compactly, order and numbers as written")
    func redactAndTrim() {
        let rules = obligations(redact: ["$.id"], trim: ["$.system_fingerprint"])
        let expected =
            #"{"id":"[REDACTED]","object":"chat.completion","created":1700000000,"model":"gpt-4o-2024-08-06","#
            + #""choices":[{"index":0,"message":{"role":"assistant","content":"Hello there"},"finish_reason":"stop"},"#
            + #"{"index":1,"message":{"role":"assistant","content":"General Kenobi"},"finish_reason":"stop"}],"#
            + #""usage":{"prompt_tokens":9,"completion_tokens":12,"total_tokens":21.0}}"#
        #expect(passed(rules.apply(toBody: bytes(completion), contentType: json)) == expected)
    }

    @Test("a wildcard redacts every selected value, whatever its type")
    func wildcardRedaction() {
        let rules = obligations(redact: ["$.choices[*].message.content", "$.usage"])
        let out = passed(rules.apply(toBody: bytes(completion), contentType: json)) ?? ""
        let document = try! JSONParser().parse(out)
        #expect(
            (try! JSONPath("$.choices[*].message.content")).evaluate(document) == [
                .string("[REDACTED]"), .string("[REDACTED]"),
            ])
        #expect(document["usage"] == .string("[REDACTED]"))
        #expect(!out.contains("Kenobi"))
    }

    @Test("trim removes members and array elements; positions are those of the original document")
    func trimSemantics() {
        let body = bytes(#"{"a":[10,11,12],"b":{"x":1,"y":2},"c":[{"k":1,"v":2},{"k":3}]}"#)
        let cases: [(ResponseObligations, String)] = [
            (obligations(trim: ["$.a[0]"]), #"{"a":[11,12],"b":{"x":1,"y":2},"c":[{"k":1,"v":2},{"k":3}]}"#),
            (obligations(trim: ["$.a[*]", "$.b.*"]), #"{"a":[],"b":{},"c":[{"k":1,"v":2},{"k":3}]}"#),
            (obligations(trim: ["$.c[*].k"]), #"{"a":[10,11,12],"b":{"x":1,"y":2},"c":[{"v":2},{}]}"#),
            // Index 0 removed and index 1 redacted refer to the original 10 and 11, in either order.
            (
                obligations(redact: ["$.a[1]"], trim: ["$.a[0]"]),
                #"{"a":["[REDACTED]",12],"b":{"x":1,"y":2},"c":[{"k":1,"v":2},{"k":3}]}"#
            ),
            (
                obligations(redact: ["$.a[0]"], trim: ["$.a[0]"]),
                #"{"a":[11,12],"b":{"x":1,"y":2},"c":[{"k":1,"v":2},{"k":3}]}"#
            ),
            // A trim inside a redacted value has nothing left to act on.
            (
                obligations(redact: ["$.b"], trim: ["$.b.x"]),
                #"{"a":[10,11,12],"b":"[REDACTED]","c":[{"k":1,"v":2},{"k":3}]}"#
            ),
        ]
        for (rules, expected) in cases {
            #expect(passed(rules.apply(toBody: body, contentType: json)) == expected)
        }
    }

    @Test("redacting $ replaces the document; trimming $ blocks")
    func rootPaths() {
        let body = bytes(#"{"a":1}"#)
        #expect(passed(obligations(redact: ["$"]).apply(toBody: body, contentType: json)) == #""[REDACTED]""#)
        #expect(
            blockReason(obligations(trim: ["$"]).apply(toBody: body, contentType: json))?.code == .trimsWholeResponse)
    }

    @Test("a value that already reads [REDACTED] is not a change")
    func alreadyRedacted() {
        let body = bytes(#"{ "id" : "[REDACTED]" }"#)
        #expect(obligations(redact: ["$.id"]).apply(toBody: body, contentType: json) == .pass(body))
    }

    @Test("blockIf is evaluated on the original body, so redacting the same path cannot hide a match")
    func blockBeforeRedaction() throws {
        let body = bytes(
            #"{"choices":[{"message":{"content":"ok"}},{"message":{"content":"your key is \#(secret) enjoy"}}]}"#)
        let rules = obligations(redact: ["$.choices[*].message.content"], blockIf: [secretRule()])
        let reason = try #require(blockReason(rules.apply(toBody: body, contentType: json)))
        #expect(reason.code == .blockRule)
        #expect(reason.message.contains(secretRule().summary))
        #expect(!reason.message.contains(secret))
        #expect(!text(reason.errorJSON).contains(secret))
    }

    @Test("a block rule over a missing field does not block by default; not_exists blocks its absence")
    func blockRuleOnMissingField() {
        let body = bytes(#"{"choices":[]}"#)
        #expect(obligations(blockIf: [secretRule()]).apply(toBody: body, contentType: json) == .pass(body))
        let lacksModeration = try! PayloadRule("$.moderation", op: .notExists)
        #expect(
            blockReason(obligations(blockIf: [lacksModeration]).apply(toBody: body, contentType: json))?.code
                == .blockRule)
    }

    @Test(
        "content obligations fail closed on a body that is not JSON in UTF-8",
        arguments: [
            ("text/plain", #"{"id":"x"}"#, ResponseBlockReason.Code.unsupportedContentType),
            ("application/json; charset=iso-8859-1", #"{"id":"x"}"#, .unsupportedContentType),
            ("application/x-ndjson", #"{"id":"x"}"#, .unsupportedContentType),
            ("text/event-stream", #"data: {"id":"x"}"#, .unsupportedContentType),
            ("application/json", #"{"id":"x""#, .notJSON),
            ("application/json", #"{"id":"x","id":"y"}"#, .notJSON),
            ("application/json", #"{"id":"x"} trailing"#, .notJSON),
            ("application/json", "", .notJSON),
        ])
    func failClosed(contentType: String, body: String, code: ResponseBlockReason.Code) {
        for rules in [obligations(redact: ["$.id"]), obligations(trim: ["$.id"]), obligations(blockIf: [secretRule()])]
        {
            let reason = blockReason(rules.apply(toBody: bytes(body), contentType: contentType))
            #expect(reason?.code == code)
            #expect(!(reason?.message.contains(#""x""#) ?? true))
        }
    }

    @Test("no content type with a content obligation blocks")
    func missingContentType() {
        #expect(
            blockReason(obligations(redact: ["$.id"]).apply(toBody: bytes("{}"), contentType: nil))?.code
                == .unsupportedContentType)
    }

    @Test("a parse error never quotes the body")
    func parseErrorDoesNotQuote() throws {
        let body = bytes(#"{"key":"\#(secret)"#)
        let reason = try #require(
            blockReason(obligations(blockIf: [secretRule()]).apply(toBody: body, contentType: json)))
        #expect(reason.code == .notJSON)
        #expect(!reason.message.contains("sk-"))
    }

    @Test("maxBytes alone: any content type passes within the cap, exactly the cap included")
    func maxBytesOnly() {
        let body = bytes("plain text, not JSON")
        #expect(obligations(maxBytes: body.count).apply(toBody: body, contentType: "text/plain") == .pass(body))
        #expect(obligations(maxBytes: body.count).apply(toBody: body, contentType: nil) == .pass(body))
        let reason = blockReason(obligations(maxBytes: body.count - 1).apply(toBody: body, contentType: "text/plain"))
        #expect(reason?.code == .tooLarge)
        #expect(reason?.message.contains("\(body.count - 1)") == true)
    }

    @Test("a body larger than the proxy inspects is blocked when content obligations apply")
    func inspectionLimit() {
        let limits = ResponseLimits(maxJSONBodyBytes: 16)
        let body = bytes(#"{"id":"0123456789abcdef"}"#)
        let rules = obligations(redact: ["$.id"])
        #expect(blockReason(rules.apply(toBody: body, contentType: json, limits: limits))?.code == .tooLargeToInspect)
        #expect(obligations(maxBytes: 100).apply(toBody: body, contentType: json, limits: limits) == .pass(body))
    }

    @Test("a body nested deeper than the limit is blocked")
    func depthLimit() {
        let body = bytes(String(repeating: "[", count: 70) + String(repeating: "]", count: 70))
        #expect(blockReason(obligations(redact: ["$.a"]).apply(toBody: body, contentType: json))?.code == .notJSON)
    }

    @Test(
        "content types",
        arguments: [
            ("application/json", ResponseMediaKind.json),
            ("Application/JSON ; charset=\"UTF-8\"", .json),
            ("application/json;charset=utf8", .json),
            ("application/problem+json", .json),
            ("application/vnd.api+json; version=2", .json),
            ("application/+json", .other),
            ("application/json-seq", .other),
            ("text/json", .other),
            ("application/json; charset=utf-16", .other),
            ("text/event-stream", .eventStream),
            ("text/event-stream; charset=utf-8", .eventStream),
            ("json", .other),
            ("", .other),
        ])
    func mediaKinds(contentType: String, kind: ResponseMediaKind) {
        #expect(ResponseMediaKind(contentType: contentType) == kind)
    }

    @Test("the error body is JSON naming the type, code and message")
    func errorBody() throws {
        let reason = ResponseBlockReason(code: .blockRule, message: "a \"quoted\" rule")
        let document = try JSONParser().parse(reason.errorJSON)
        #expect(document["error"]?["type"] == .string("quorum_latch_response_blocked"))
        #expect(document["error"]?["code"] == .string("block_rule"))
        #expect(document["error"]?["message"] == .string("a \"quoted\" rule"))
        #expect(text(reason.finalEvent) == "event: error\ndata: \(text(reason.errorJSON))\n\n")
    }
}

// MARK: - Streams

/// Feeds the chunks, then finishes; the bytes a client would receive (the final event included)
/// and the termination, if any.
private func run(
    _ rules: ResponseObligations, _ chunks: [[UInt8]], limits: ResponseLimits = .default
) -> (bytes: [UInt8], termination: ResponseBlockReason?) {
    var filter = SSEObligationFilter(obligations: rules, limits: limits)
    var out: [UInt8] = []
    var termination: ResponseBlockReason?
    func take(_ output: SSEOutput) {
        out += output.bytes
        if let reason = output.termination {
            #expect(termination == nil, "a stream is cut once")
            termination = reason
            out += output.finalEvent ?? []
        }
    }
    for chunk in chunks { take(filter.feed(chunk)) }
    take(filter.finish())
    #expect(filter.feed(bytes("data: {}\n\n")) == SSEOutput(), "nothing passes after the end")
    return (out, termination)
}

private func run(
    _ rules: ResponseObligations, _ stream: String, limits: ResponseLimits = .default
) -> (text: String, termination: ResponseBlockReason?) {
    let (out, termination) = run(rules, [bytes(stream)], limits: limits)
    return (text(out), termination)
}

/// A chat.completion.chunk event carrying one delta.
private func chunk(_ content: String, newline: String = "\n") -> String {
    "data: {\"id\":\"chatcmpl-9\",\"object\":\"chat.completion.chunk\",\"system_fingerprint\":\"fp_1\","
        + "\"choices\":[{\"index\":0,\"delta\":{\"content\":\"\(content)\"}}]}\(newline)\(newline)"
}

private func redactedChunk(_ content: String, newline: String = "\n") -> String {
    "data: {\"id\":\"[REDACTED]\",\"object\":\"chat.completion.chunk\","
        + "\"choices\":[{\"index\":0,\"delta\":{\"content\":\"\(content)\"}}]}\(newline)\(newline)"
}

private let openAIRules = obligations(redact: ["$.id"], trim: ["$.system_fingerprint"], blockIf: [streamSecretRule])

/// A stream with comments, `id`, `event` and `retry` fields, two deltas and `[DONE]`.
private func sampleStream(newline nl: String) -> String {
    ": keep-alive\(nl)\(nl)" + "id: 1\(nl)event: message\(nl)" + chunk("Hel", newline: nl) + "retry: 1000\(nl)\(nl)"
        + chunk("lo", newline: nl) + "data: [DONE]\(nl)\(nl)"
}

private func expectedSample(newline nl: String) -> String {
    ": keep-alive\(nl)\(nl)" + "id: 1\(nl)event: message\(nl)" + redactedChunk("Hel", newline: nl)
        + "retry: 1000\(nl)\(nl)" + redactedChunk("lo", newline: nl) + "data: [DONE]\(nl)\(nl)"
}

/// Every way to cut `stream` in two, byte-at-a-time feeding, and pseudo-random multi-way splits
/// all give the output of feeding it whole.
private func expectSplitInvariant(
    _ rules: ResponseObligations, _ stream: [UInt8], limits: ResponseLimits = .default,
    sourceLocation: SourceLocation = #_sourceLocation
) {
    let whole = run(rules, [stream], limits: limits)
    for split in 0...stream.count {
        let parts = run(rules, [Array(stream[..<split]), Array(stream[split...])], limits: limits)
        #expect(parts.bytes == whole.bytes, "split at \(split)", sourceLocation: sourceLocation)
        #expect(parts.termination == whole.termination, "split at \(split)", sourceLocation: sourceLocation)
    }
    let single = run(rules, stream.map { [$0] }, limits: limits)
    #expect(single.bytes == whole.bytes, "byte at a time", sourceLocation: sourceLocation)
    #expect(single.termination == whole.termination, sourceLocation: sourceLocation)
    var seed: UInt64 = 0x9E37_79B9_7F4A_7C15
    for _ in 0..<50 {
        var chunks: [[UInt8]] = []
        var start = 0
        while start < stream.count {
            seed = seed &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            let length = Int(seed >> 59) + 1
            let end = min(stream.count, start + length)
            chunks.append(Array(stream[start..<end]))
            start = end
        }
        let random = run(rules, chunks, limits: limits)
        #expect(random.bytes == whole.bytes, "random split", sourceLocation: sourceLocation)
        #expect(random.termination == whole.termination, sourceLocation: sourceLocation)
    }
}

@Suite("Response obligations on server-sent event streams")
struct ResponseObligationStreamTests {
    @Test(
        "chat.completion.chunk events are rewritten; comments, id, event, retry and [DONE] pass",
        arguments: ["\n", "\r\n", "\r"])
    func openAIStream(newline: String) {
        let (out, termination) = run(openAIRules, sampleStream(newline: newline))
        #expect(termination == nil)
        #expect(out == expectedSample(newline: newline))
    }

    @Test("every split of the stream gives the same output", arguments: ["\n", "\r\n", "\r"])
    func splitInvariance(newline: String) {
        expectSplitInvariant(openAIRules, bytes(sampleStream(newline: newline)))
    }

    @Test("a stream with mixed line endings and a block is split-invariant")
    func splitInvarianceWithBlock() {
        let stream = chunk("a", newline: "\r\n") + ": note\r" + chunk("leak \(secret)", newline: "\n") + chunk("after")
        expectSplitInvariant(openAIRules, bytes(stream))
        #expect(run(openAIRules, stream).termination?.code == .blockRule)
    }

    @Test("a stream nothing changes passes byte for byte")
    func unchangedStream() {
        let stream = ": hi\r\n\r\n" + "event: ping\ndata: {\"choices\": [ ]}\n\n" + "data: [DONE]\n\n"
        let rules = obligations(redact: ["$.id"], trim: ["$.usage"], blockIf: [streamSecretRule], maxBytes: 4096)
        #expect(run(rules, stream) == (stream, nil))
        #expect(run(.none, sampleStream(newline: "\r\n")) == (sampleStream(newline: "\r\n"), nil))
    }

    @Test("multi-line data is joined with LF, inspected as one payload, and rewritten as one data line")
    func multiLineData() {
        let stream =
            "event: completion\r\ndata: {\"id\": \"abc\",\r\ndata:\"choices\": [],\r\nid: 7\r\ndata: \"n\": 1}\r\n\r\n"
        let expected = "event: completion\r\ndata: {\"id\":\"[REDACTED]\",\"choices\":[],\"n\":1}\r\nid: 7\r\n\r\n"
        #expect(run(obligations(redact: ["$.id"]), stream) == (expected, nil))
        expectSplitInvariant(obligations(redact: ["$.id"]), bytes(stream))
    }

    @Test("a secret inside one multi-line payload blocks")
    func multiLineBlock() {
        let stream = "data: {\"choices\":[{\"delta\":\ndata: {\"content\":\"\(secret)\"}}]}\n\n"
        #expect(run(obligations(blockIf: [streamSecretRule]), stream).termination?.code == .blockRule)
    }

    @Test("a block cuts the stream: earlier events pass, then the final error event, then nothing")
    func blockCutsStream() throws {
        let stream = chunk("Hi") + chunk("key: \(secret)") + chunk("more") + "data: [DONE]\n\n"
        let (out, termination) = run(openAIRules, stream)
        let reason = try #require(termination)
        #expect(reason.code == .blockRule)
        #expect(out == redactedChunk("Hi") + text(reason.finalEvent))
        #expect(!out.contains(secret))
        #expect(!out.contains("AbCdEf"))
        #expect(out.contains("event: error\ndata: {\"error\":{\"type\":\"quorum_latch_response_blocked\""))
    }

    @Test("a secret streamed in pieces is caught in the event that completes it, and never quoted")
    func secretAcrossEvents() throws {
        let pieces = ["Here: ", "sk-AbCd", "EfGhIjKl", "MnOpQrStUv", "WxYz0123", " done"]
        let stream = pieces.map { chunk($0) }.joined()
        let (out, termination) = run(obligations(blockIf: [streamSecretRule]), stream)
        let reason = try #require(termination)
        #expect(reason.code == .blockRule)
        #expect(reason.message.contains("across stream events"))
        #expect(!out.contains(secret))
        #expect(!out.contains("MnOpQrStUv"), "the piece that completes the match is held back")
        #expect(out.hasPrefix(chunk("Here: ") + chunk("sk-AbCd") + chunk("EfGhIjKl") + "event: error\n"))
        expectSplitInvariant(obligations(blockIf: [streamSecretRule]), bytes(stream))
    }

    @Test("text is gathered per location: two choices' pieces do not join")
    func acrossEventsPerLocation() {
        func two(_ a: String, _ b: String) -> String {
            "data: {\"choices\":[{\"delta\":{\"content\":\"\(a)\"}},{\"delta\":{\"content\":\"\(b)\"}}]}\n\n"
        }
        let harmless = two("sk-AbCdEfGhIj", "x") + two("y", "KlMnOpQrStUv")
        #expect(run(obligations(blockIf: [streamSecretRule]), harmless).termination == nil)
        let leaking = two("sk-AbCdEfGhIj", "x") + two("KlMnOpQrStUv", "y")
        #expect(run(obligations(blockIf: [streamSecretRule]), leaking).termination?.code == .blockRule)
    }

    @Test("contains rules also see earlier pieces; other operators see only the event")
    func containsAcrossEvents() {
        let contains = try! PayloadRule(
            "$.choices[*].delta.content", op: .contains, operand: .string("BEGIN PRIVATE KEY"), quantifier: .any)
        let stream = chunk("-----BEGIN PRI") + chunk("VATE KEY-----")
        #expect(run(obligations(blockIf: [contains]), stream).termination?.code == .blockRule)
        let equal = try! PayloadRule("$.choices[*].delta.content", op: .eq, operand: .string("ab"), quantifier: .any)
        #expect(run(obligations(blockIf: [equal]), chunk("a") + chunk("b")).termination == nil)
    }

    @Test("a match longer than the lookback across events is not seen")
    func lookbackBound() {
        let stream = chunk("sk-AbCdEfGh") + chunk("IjKlMnOpQrStUv")
        let rules = obligations(blockIf: [streamSecretRule])
        #expect(run(rules, stream, limits: ResponseLimits(streamMatchLookback: 4)).termination == nil)
        #expect(run(rules, stream, limits: ResponseLimits(streamMatchLookback: 11)).termination?.code == .blockRule)
    }

    @Test("too many tracked locations cut the stream")
    func trackedLocationBound() {
        let stream = (0..<5).map { "data: {\"a\":\"x\",\"n\":\($0)}\n\n" }.joined()
        let rule = try! PayloadRule("$.*", op: .regex, operand: .string("zzz"), quantifier: .any)
        let limits = ResponseLimits(maxStreamLocations: 1)
        #expect(run(obligations(blockIf: [rule]), stream, limits: limits).termination == nil, "one string location")
        let wide = "data: {\"a\":\"x\",\"b\":\"y\"}\n\n"
        #expect(run(obligations(blockIf: [rule]), wide, limits: limits).termination?.code == .tooManyStreamLocations)
    }

    @Test("data that is not JSON cuts the stream when content obligations apply, and passes otherwise")
    func nonJSONData() {
        let stream = chunk("ok") + "data: hello \(secret)\n\n" + chunk("later")
        let (out, termination) = run(openAIRules, stream)
        #expect(termination?.code == .notJSON)
        #expect(!out.contains(secret))
        #expect(!(termination?.message.contains("hello") ?? true))
        #expect(run(obligations(maxBytes: 10_000), stream) == (stream, nil))
        #expect(run(.none, stream) == (stream, nil))
    }

    @Test("events without data, empty data, and [DONE] pass even with content obligations")
    func passThroughEvents() {
        let stream =
            "event: ping\nid: 3\nretry: 10\nfoo: bar\n: comment\n\n" + "data:\n\n" + "data:[DONE]\n\n"
            + "data: [DONE]\r\n\r\n"
        #expect(run(openAIRules, stream) == (stream, nil))
        #expect(run(openAIRules, "data: [DONE] \n\n").termination?.code == .notJSON, "only exactly [DONE]")
    }

    @Test("field parsing follows WHATWG: no space after the colon, a bare 'data' line, a byte order mark")
    func fieldParsing() {
        let rules = obligations(redact: ["$.id"])
        #expect(run(rules, "data:{\"id\":1}\n\n") == ("data: {\"id\":\"[REDACTED]\"}\n\n", nil))
        // A bare `data` line appends an empty line to the data: "{\"id\":1}\n" is still JSON.
        #expect(run(rules, "data: {\"id\":1}\ndata\n\n") == ("data: {\"id\":\"[REDACTED]\"}\n\n", nil))
        // The byte order mark is not part of the first field name, so the data is inspected.
        let bom = "\u{FEFF}data: {\"id\":\"secret-id\"}\n\n"
        #expect(run(rules, bom) == ("\u{FEFF}data: {\"id\":\"[REDACTED]\"}\n\n", nil))
        expectSplitInvariant(rules, bytes(bom))
        // Field names are case-sensitive: `Data` is not data to a client, and passes as written.
        #expect(run(rules, "Data: {\"id\":1}\n\n") == ("Data: {\"id\":1}\n\n", nil))
    }

    @Test("an event is held until its blank line")
    func eventsAreWhole() {
        var filter = SSEObligationFilter(obligations: openAIRules)
        let event = bytes(chunk("Hi"))
        #expect(filter.feed(Array(event.dropLast())).bytes == [])
        #expect(text(filter.feed([event.last!]).bytes) == redactedChunk("Hi"))
        #expect(filter.feed(bytes(": a\nevent: x\ndata: {}\n")).bytes == [])
        #expect(text(filter.feed(bytes("\n")).bytes) == ": a\nevent: x\ndata: {}\n\n")
    }

    @Test("finish filters an unterminated last event and releases it without adding a blank line")
    func finishUnterminated() {
        #expect(run(openAIRules, "data: {\"id\":\"x\"}") == ("data: {\"id\":\"[REDACTED]\"}", nil))
        #expect(run(openAIRules, "data: {\"id\":\"x\"}\n") == ("data: {\"id\":\"[REDACTED]\"}\n", nil))
        #expect(run(openAIRules, "data: {\"id\":").termination?.code == .notJSON)
        #expect(
            run(openAIRules, "data: {\"choices\":[{\"delta\":{\"content\":\"\(secret)\"}}]}").termination?.code
                == .blockRule)
        #expect(run(obligations(maxBytes: 100), "data: partial") == ("data: partial", nil))
    }

    @Test("maxBytes counts upstream bytes: the cut comes after the events completed within the cap")
    func streamCap() throws {
        let first = chunk("Hello")
        let stream = first + chunk("World") + "data: [DONE]\n\n"
        let exact = obligations(maxBytes: stream.utf8.count)
        #expect(run(exact, stream) == (stream, nil))
        let capped = obligations(maxBytes: first.utf8.count + 10)
        let (out, termination) = run(capped, stream)
        let reason = try #require(termination)
        #expect(reason.code == .tooLarge)
        #expect(out == first + text(reason.finalEvent))
        expectSplitInvariant(capped, bytes(stream))
        // Rewritten events are smaller than the upstream's, but the cap counts the upstream's bytes.
        let redacting = obligations(redact: ["$.choices"], maxBytes: first.utf8.count * 2 - 1)
        #expect(run(redacting, first + first).termination?.code == .tooLarge)
    }

    @Test("one pending event larger than the limit cuts the stream, data or not")
    func pendingEventBound() {
        let limits = ResponseLimits(maxEventBytes: 64)
        let big = "data: {\"content\":\"" + String(repeating: "a", count: 100) + "\"}\n\n"
        let small = "data: {\"a\":1}\n\n"
        let (out, termination) = run(.none, small + big, limits: limits)
        #expect(termination?.code == .tooLargeToInspect)
        #expect(out.hasPrefix(small + "event: error\n"))
        #expect(!out.contains("aaaa"))
        let comments = String(repeating: ": keep-alive without a blank line\n", count: 3)
        #expect(run(.none, comments, limits: limits).termination?.code == .tooLargeToInspect)
        let ok = String(repeating: ": keep-alive\n\n", count: 100)
        #expect(run(.none, ok, limits: limits) == (ok, nil))
        expectSplitInvariant(.none, bytes(small + big), limits: limits)
    }

    @Test("trimming $ in a stream cuts it")
    func trimRootInStream() {
        #expect(run(obligations(trim: ["$"]), chunk("x")).termination?.code == .trimsWholeResponse)
    }
}
