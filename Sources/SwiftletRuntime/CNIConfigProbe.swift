import Foundation

/// The CNI network configs Swiftlet would use, found the way libcni finds them: files ending
/// `.conf`, `.conflist` or `.json` in the config directory, in lexical order, the first valid
/// one being the pod network.
public struct CNIConfigProbe: Sendable {
    /// One network config file.
    public struct Network: Sendable, Equatable, Codable {
        public var file: String
        public var name: String
        public var cniVersion: String
        /// Plugin types, in chain order.
        public var plugins: [String]
        /// Plugin types with no executable in any bin dir.
        public var missingPlugins: [String]
    }

    /// What the directory holds.
    public struct Result: Sendable, Equatable, Codable {
        /// Valid networks, in the order libcni would consider them.
        public var networks: [Network] = []
        /// Files that could not be used, with why.
        public var errors: [String] = []

        /// The pod network: the first valid config whose plugins all exist.
        public var podNetwork: Network? { networks.first { $0.missingPlugins.isEmpty } }
    }

    public let confDir: String
    public let binDirs: [String]

    public init(confDir: String, binDirs: [String]) {
        self.confDir = confDir
        self.binDirs = binDirs
    }

    /// What a scan depends on, cheaply: the config directory's and each config file's mtime
    /// and size, and each plugin directory's mtime (adding or removing a plugin changes it).
    /// Equal fingerprints mean a new scan would find the same.
    public func fingerprint() -> [String] {
        func stamp(_ path: String) -> String {
            var info = stat()
            guard stat(path, &info) == 0 else { return "\(path):absent" }
            return "\(path):\(info.st_mtim.tv_sec).\(info.st_mtim.tv_nsec):\(info.st_size):\(info.st_mode)"
        }
        var stamps = [stamp(confDir)]
        if let directory = opendir(confDir) {
            defer { closedir(directory) }
            while let entry = readdir(directory) {
                let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                    String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
                }
                if name.hasSuffix(".conf") || name.hasSuffix(".conflist") || name.hasSuffix(".json") {
                    stamps.append(stamp(confDir + "/" + name))
                }
            }
        }
        stamps.sort()
        stamps.append(contentsOf: binDirs.map(stamp))
        return stamps
    }

    /// Reads the config directory now.
    public func scan() -> Result {
        var result = Result()
        let names: [String]
        do {
            names = try FileManager.default.contentsOfDirectory(atPath: confDir)
        } catch {
            result.errors.append("cannot read \(confDir): \((error as NSError).localizedDescription)")
            return result
        }
        for name in names.sorted() where name.hasSuffix(".conf") || name.hasSuffix(".conflist") || name.hasSuffix(".json") {
            let path = confDir + "/" + name
            do {
                result.networks.append(try load(path, isList: name.hasSuffix(".conflist")))
            } catch {
                result.errors.append("\(path): \(error.message)")
            }
        }
        return result
    }

    private struct LoadError: Error {
        var message: String
    }

    private func load(_ path: String, isList: Bool) throws(LoadError) -> Network {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw LoadError(message: "cannot read the file")
        }
        let object: [String: Any]
        do {
            guard let parsed = try JSONSerialization.jsonObject(with: data) as? [String: Any] else {
                throw LoadError(message: "not a JSON object")
            }
            object = parsed
        } catch let error as LoadError {
            throw error
        } catch {
            throw LoadError(message: "invalid JSON")
        }
        let name = object["name"] as? String ?? ""
        guard !name.isEmpty else { throw LoadError(message: "no network name") }
        let version = object["cniVersion"] as? String ?? ""
        var plugins: [String] = []
        if isList {
            guard let list = object["plugins"] as? [[String: Any]], !list.isEmpty else {
                throw LoadError(message: "a .conflist needs a non-empty \"plugins\" list")
            }
            for plugin in list {
                guard let type = plugin["type"] as? String, !type.isEmpty else {
                    throw LoadError(message: "a plugin has no \"type\"")
                }
                plugins.append(type)
            }
        } else {
            guard let type = object["type"] as? String, !type.isEmpty else {
                throw LoadError(message: "no plugin \"type\"")
            }
            plugins.append(type)
        }
        let missing = plugins.filter { type in
            !binDirs.contains { FileManager.default.isExecutableFile(atPath: $0 + "/" + type) }
        }
        return Network(file: path, name: name, cniVersion: version, plugins: plugins, missingPlugins: missing)
    }
}
