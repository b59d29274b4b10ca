import Benchmark
import QuorumCrypto

// Wall-clock cost of each QuorumCrypto operation a node performs, per ciphersuite and cluster size.
// Whatever an operation needs from other participants (their commitments, round-one packages,
// shares) is prepared in `setup` or before `startMeasurement()`, so each figure is one node's own
// work for one request. docs/benchmarks.md explains every row and records the results.

/// The k-of-n sizes a cluster is expected to run at.
let clusterSizes = [(minSigners: 3, maxSigners: 4), (minSigners: 5, maxSigners: 7), (minSigners: 7, maxSigners: 10)]

let benchmarks: @Sendable () -> Void = {
    // About 2 s or 2,000 samples per benchmark, whichever comes first: enough samples for a
    // meaningful p99 while the 60 benchmarks finish in a few minutes.
    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock], timeUnits: .microseconds, warmupIterations: 20, maxDuration: .seconds(2),
        maxIterations: 2_000)
    for size in clusterSizes {
        registerBenchmarks(Ed25519Suite.self, minSigners: size.minSigners, maxSigners: size.maxSigners)
        registerBenchmarks(Secp256k1Suite.self, minSigners: size.minSigners, maxSigners: size.maxSigners)
    }
}

/// The ciphersuite as it appears in benchmark names (and `--filter` patterns).
func suiteName<C: Ciphersuite>(_: C.Type) -> String {
    switch C.id {
    case .ed25519: "Ed25519"
    case .secp256k1: "secp256k1"
    }
}

/// The signed message: 32 bytes, the size of a SHA-256 digest.
let message = [UInt8](repeating: 0x5a, count: 32)

/// A 64-byte credential, sealed under a name given as associated data.
let credentialName = Array("credential/db-primary".utf8)

/// Key packages of participants 1…n and the group, from the trusted dealer.
func dealerKeys<C: Ciphersuite>(
    _: C.Type, minSigners: Int, maxSigners: Int, purpose: KeyPurpose
) throws(CryptoError) -> (keys: [KeyPackage<C>], group: PublicKeyPackage<C>) {
    let (shares, group) = try TrustedDealer<C>.generate(
        minSigners: minSigners, maxSigners: maxSigners, purpose: purpose)
    var keys: [KeyPackage<C>] = []
    for share in shares { keys.append(try share.verify()) }
    return (keys, group)
}

/// What one participant (identifier 1) holds at each step of a DKG among n participants.
struct DKGFixture<C: Ciphersuite>: Sendable {
    let round1Secret: DKG<C>.Round1Secret
    /// The round-one packages of the other n − 1 participants.
    let round1Packages: [Identifier: DKG<C>.Round1Package]
    let round2Secret: DKG<C>.Round2Secret
    /// The round-two shares the other n − 1 participants sent to participant 1.
    let round2Packages: [Identifier: DKG<C>.Round2Package]

    init(minSigners: Int, maxSigners: Int) throws(CryptoError) {
        var ids: [Identifier] = []
        for value in 1...maxSigners { ids.append(try Identifier(UInt16(value))) }
        var secrets: [Identifier: DKG<C>.Round1Secret] = [:]
        var packages: [Identifier: DKG<C>.Round1Package] = [:]
        for id in ids {
            (secrets[id], packages[id]) = try DKG<C>.part1(
                identifier: id, maxSigners: maxSigners, minSigners: minSigners, purpose: .signing)
        }
        let me = ids[0]
        var mine: DKG<C>.Round2Secret?
        var toMe: [Identifier: DKG<C>.Round2Package] = [:]
        for id in ids {
            let (secret, outgoing) = try DKG<C>.part2(
                secret: secrets[id]!, round1Packages: packages.filter { $0.key != id })
            if id == me { mine = secret } else { toMe[id] = outgoing[me]! }
        }
        round1Secret = secrets[me]!
        round1Packages = packages.filter { $0.key != me }
        round2Secret = mine!
        round2Packages = toMe
    }
}

/// A signer (participant 1) and the commitments of the k − 1 other signers.
struct SignerFixture<C: Ciphersuite>: Sendable {
    let keys: [KeyPackage<C>]
    let others: [SigningCommitments<C>]
}

/// A commitment list and the k valid signature shares over it.
struct AggregatorFixture<C: Ciphersuite>: Sendable {
    let package: SigningPackage<C>
    let shares: [SignatureShare<C>]
    let group: PublicKeyPackage<C>
}

/// A sealed box and k holders' decryption shares for it.
struct OpenerFixture<C: Ciphersuite>: Sendable {
    let box: SealedBox
    let shares: [DecryptionShare<C>]
    let group: PublicKeyPackage<C>
}

/// Registers every operation of one ciphersuite at one cluster size.
func registerBenchmarks<C: Ciphersuite>(_ suite: C.Type, minSigners k: Int, maxSigners n: Int) {
    let prefix = "\(suiteName(suite)) \(k)-of-\(n)"

    // MARK: Signing

    Benchmark("\(prefix) round 1 commit") { benchmark, key in
        blackHole(FROST<C>.commit(key))
    } setup: {
        try dealerKeys(suite, minSigners: k, maxSigners: n, purpose: .signing).keys[0]
    }

    // One signer's work per request, from a commitment list whose elements were validated on
    // receipt. Nonces are single-use, so every sample commits afresh (unmeasured); the other
    // signers' commitments are reused, which is sound because the signer's own fresh commitment
    // changes the list, hence every binding factor and the challenge.
    Benchmark("\(prefix) round 2 sign (per signer)") { (benchmark, fixture: SignerFixture<C>) in
        let signer = fixture.keys[0]
        let nonces = FROST<C>.commit(signer)
        let package = try SigningPackage(message: message, commitments: [nonces.commitments] + fixture.others)
        benchmark.startMeasurement()
        let session = try SigningSession(package: package, verifyingKey: signer.verifyingKey)
        blackHole(try FROST<C>.sign(session: session, nonces: nonces, key: signer))
        benchmark.stopMeasurement()
    } setup: {
        let keys = try dealerKeys(suite, minSigners: k, maxSigners: n, purpose: .signing).keys
        return SignerFixture(keys: keys, others: keys[1..<k].map { FROST<C>.commit($0).commitments })
    }

    // The coordinator's work once all k shares are in: the session (binding factors, group
    // commitment, challenge) and the sum, with the final signature verification.
    Benchmark("\(prefix) aggregate + verify") { (benchmark, fixture: AggregatorFixture<C>) in
        let session = try SigningSession(package: fixture.package, verifyingKey: fixture.group.verifyingKey)
        blackHole(try FROST<C>.aggregate(session: session, shares: fixture.shares, group: fixture.group))
    } setup: {
        let (keys, group) = try dealerKeys(suite, minSigners: k, maxSigners: n, purpose: .signing)
        let signers = Array(keys.prefix(k))
        let nonces = signers.map { FROST<C>.commit($0) }
        let package = try SigningPackage(message: message, commitments: nonces.map(\.commitments))
        let session = try SigningSession(package: package, verifyingKey: group.verifyingKey)
        var shares: [SignatureShare<C>] = []
        for (key, nonce) in zip(signers, nonces) {
            shares.append(try FROST<C>.sign(session: session, nonces: nonce, key: key))
        }
        return AggregatorFixture(package: package, shares: shares, group: group)
    }

    // MARK: Key generation

    Benchmark("\(prefix) dealer keygen + verify shares") { benchmark in
        let (shares, group) = try TrustedDealer<C>.generate(minSigners: k, maxSigners: n, purpose: .signing)
        for share in shares { blackHole(try share.verify()) }
        blackHole(group)
    }

    Benchmark("\(prefix) DKG part1") { benchmark in
        blackHole(try DKG<C>.part1(identifier: Identifier(1), maxSigners: n, minSigners: k, purpose: .signing))
    }

    Benchmark("\(prefix) DKG part2 (n-1 proofs)") { benchmark, fixture in
        blackHole(try DKG<C>.part2(secret: fixture.round1Secret, round1Packages: fixture.round1Packages))
    } setup: {
        try DKGFixture<C>(minSigners: k, maxSigners: n)
    }

    Benchmark("\(prefix) DKG part3 (n-1 shares)") { benchmark, fixture in
        blackHole(try DKG<C>.part3(secret: fixture.round2Secret, round2Packages: fixture.round2Packages))
    } setup: {
        try DKGFixture<C>(minSigners: k, maxSigners: n)
    }

    // MARK: Sealing

    Benchmark("\(prefix) seal 64 B") { (benchmark, fixture: (credential: SecretBytes, group: PublicKeyPackage<C>)) in
        blackHole(try ThresholdSealing<C>.seal(fixture.credential, to: fixture.group, associatedData: credentialName))
    } setup: {
        let group = try dealerKeys(suite, minSigners: k, maxSigners: n, purpose: .sealing).group
        return (credential: SecretBytes.random(count: 64), group: group)
    }

    Benchmark("\(prefix) decryption share") { (benchmark, fixture: (box: SealedBox, key: KeyPackage<C>)) in
        blackHole(try ThresholdSealing<C>.decryptionShare(for: fixture.box, key: fixture.key))
    } setup: {
        let (keys, group) = try dealerKeys(suite, minSigners: k, maxSigners: n, purpose: .sealing)
        let box = try ThresholdSealing<C>.seal(
            SecretBytes.random(count: 64), to: group, associatedData: credentialName)
        return (box: box, key: keys[0])
    }

    // Opening checks each of the k shares' proofs, combines them and decrypts.
    Benchmark("\(prefix) open (k shares)") { (benchmark, fixture: OpenerFixture<C>) in
        blackHole(
            try ThresholdSealing<C>.open(
                fixture.box, shares: fixture.shares, group: fixture.group, associatedData: credentialName))
    } setup: {
        let (keys, group) = try dealerKeys(suite, minSigners: k, maxSigners: n, purpose: .sealing)
        let box = try ThresholdSealing<C>.seal(
            SecretBytes.random(count: 64), to: group, associatedData: credentialName)
        var shares: [DecryptionShare<C>] = []
        for key in keys.prefix(k) { shares.append(try ThresholdSealing<C>.decryptionShare(for: box, key: key)) }
        return OpenerFixture(box: box, shares: shares, group: group)
    }
}
