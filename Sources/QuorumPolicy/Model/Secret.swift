/// A credential the bundle names, and how the proxy injects it into an upstream request.
///
/// The bundle never holds the credential's value: the value is sealed to the quorum and released
/// only for a threshold-signed allow. The bundle says which secret a mount uses and where it goes.
public struct SecretSpec: Sendable, Equatable, Hashable {
    /// Where the credential goes in the upstream request.
    public enum Injection: Sendable, Equatable, Hashable {
        /// `Authorization: Bearer <value>`.
        case bearer
        /// A named header carrying the value as is (`x-api-key: <value>`).
        case header(name: String)
        /// A query parameter (`?key=<value>`), replacing any the agent sent.
        case query(parameter: String)
        /// `Authorization: Basic base64(username:value)`.
        case basic(username: String)
    }

    /// The secret's name, unique in the bundle (`openai`).
    public let name: String
    /// How the value is injected.
    public let injection: Injection

    /// A secret named `name` injected as `injection`.
    public init(name: String, injection: Injection) {
        self.name = name
        self.injection = injection
    }
}

extension SecretSpec {
    /// Whether `name` may name a secret: the rule the bundle checks, also applied where a sealed
    /// credential is stored under that name (a file name), so every secret a bundle can name can
    /// be stored, and nothing else.
    public static func isValidName(_ name: String) -> Bool { BundleValues.isName(name) }

    /// What a secret name may hold, for messages: 1-64 of letters, digits, '-', '_' and '.'.
    public static let nameRule = BundleValues.nameRule
}
