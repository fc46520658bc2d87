/// The one error type of the domain. Every backend maps its driver's errors onto it, and no case carries
/// driver text or stored data: messages are safe to show to a caller and to log.
public enum HubError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The input is invalid; `field` names it (dotted for nested fields, e.g. `auth_config.token`), `reason` says why.
    case validation(field: String, reason: String)
    /// No `entity` with this `id` exists.
    case notFound(entity: String, id: String)
    /// The request conflicts with the current state (a duplicate, a job already running, a finished job).
    case conflict(field: String?, reason: String)
    /// A referenced row (named by `field`) does not exist.
    case invalidReference(field: String, reason: String)
    /// The database (or another dependency) cannot be reached or failed; retrying later may succeed.
    case unavailable(reason: String)
    /// A stored secret could not be opened (wrong or missing sealing key, tampered ciphertext).
    case sealing(reason: String)
    /// The database does not have the schema this build expects.
    case schemaMismatch(reason: String)

    /// A one-line message for callers and logs: the field (or entity and id), then the reason.
    public var description: String {
        switch self {
        case .validation(let field, let reason): "\(field): \(reason)"
        case .notFound(let entity, let id): "\(entity) \(id) not found"
        case .conflict(let field, let reason): field.map { "\($0): \(reason)" } ?? reason
        case .invalidReference(let field, let reason): "\(field): \(reason)"
        case .unavailable(let reason): "unavailable: \(reason)"
        case .sealing(let reason): "secret sealing: \(reason)"
        case .schemaMismatch(let reason): "schema: \(reason)"
        }
    }
}
