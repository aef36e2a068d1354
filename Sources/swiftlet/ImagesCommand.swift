import ArgumentParser
import ImageStore
import RegistryClient

/// `swiftlet images import|ls|rm|gc`: the image store without the CRI, with the agent's
/// --root, safe to use while the agent runs.
struct Images: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Manage images in the store (offline import, list, remove).",
        subcommands: [PullImage.self, ImportImage.self, ListImages.self, RemoveImages.self, CollectGarbage.self,
                      MountRootfs.self, UnmountRootfs.self]
    )
}

struct ImageStoreOptions: ParsableArguments {
    @Option(name: .long, help: "Persistent data (as swiftlet run). Default: /var/lib/swiftlet.")
    var root: String = "/var/lib/swiftlet"

    func store() throws -> ImageStore {
        try ImageStore(root: root + "/images")
    }
}

struct ImportImage: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import", abstract: "Import an OCI layout directory, an OCI archive or a Docker archive (docker save).")
    @OptionGroup var options: ImageStoreOptions
    @Option(help: "Name the image (when the archive names none, or to rename it).") var name: String?
    @Argument var path: String

    func run() async throws {
        for imported in try options.store().importArchive(path, name: name) { print(imported) }
    }
}

struct ListImages: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "ls", abstract: "List images.")
    @OptionGroup var options: ImageStoreOptions
    @Flag(name: .shortAndLong, help: "Ids only.") var quiet = false

    func run() async throws {
        let images = try options.store().images()
        if quiet {
            for image in images { print(image.id) }
            return
        }
        print("IMAGE".padding(56) + "ID".padding(15) + "SIZE")
        for image in images {
            let names = image.tags.isEmpty ? ["<none>"] : image.tags.sorted()
            for name in names {
                print(name.padding(56) + String(image.id.hex.prefix(13)).padding(15) + "\(image.size)")
            }
        }
    }
}

struct RemoveImages: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "rm", abstract: "Remove images (every name of each) and collect garbage.")
    @OptionGroup var options: ImageStoreOptions
    @Argument var references: [String]

    func run() async throws {
        let store = try options.store()
        for reference in references {
            if try !store.remove(reference) { throw ValidationError("no image \(reference)") }
        }
    }
}

struct CollectGarbage: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "gc", abstract: "Remove blobs and snapshots no image uses.")
    @OptionGroup var options: ImageStoreOptions

    func run() async throws {
        let removed = try options.store().collectGarbage()
        print("removed \(removed.blobs) blobs, \(removed.snapshots) snapshots")
    }
}

struct PullImage: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "pull", abstract: "Pull an image from its registry.")
    @OptionGroup var options: ImageStoreOptions
    @Option(name: .customLong("registry-config-path"), help: "hosts.toml directory. Default: /etc/swiftlet/certs.d.")
    var registryConfigPath: String = "/etc/swiftlet/certs.d"
    @Option(help: "USER:PASSWORD for the registry.") var user: String?
    @Argument var reference: String

    func run() async throws {
        var credentials = RegistryCredentials()
        if let user {
            let parts = user.split(separator: ":", maxSplits: 1).map(String.init)
            credentials = RegistryCredentials(username: parts[0], password: parts.count > 1 ? parts[1] : "")
        }
        let image = try await Puller(store: try options.store(), hosts: RegistryHosts(configPath: registryConfigPath))
            .pull(reference, credentials: credentials)
        print(image.id)
    }
}

struct MountRootfs: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mount", abstract: "Make a container root filesystem over an image in DIR (overlay, or a copy); print it.")
    @OptionGroup var options: ImageStoreOptions
    @Argument var reference: String
    @Argument var directory: String

    func run() async throws {
        let store = try options.store()
        guard let image = store.resolve(reference) else { throw ValidationError("no image \(reference)") }
        let (path, kind) = try store.mountRootfs(image, at: directory)
        print(path, kind.rawValue)
    }
}

struct UnmountRootfs: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "unmount", abstract: "Undo `mount`: unmount and remove DIR.")
    @OptionGroup var options: ImageStoreOptions
    @Argument var directory: String

    func run() async throws {
        try options.store().removeRootfs(at: directory)
    }
}
