import CRI
import Containerizer
import Foundation

/// What the streaming server needs of pods: exec sessions with the caller's descriptors, and
/// connections into a pod's network namespace.
extension PodRuntime {
    /// Starts `command` in the running container with the given descriptors (see
    /// ``Containerizer/exec(id:args:tty:stdin:stdout:stderr:resize:)``).
    public func startExec(_ containerID: String, command: [String], tty: Bool, stdin: Int32, stdout: Int32, stderr: Int32,
                          resize: Int32?) throws(CRIError) -> ExecSession {
        _ = try container(containerID)
        guard containerizer.info(id: containerID)?.state == .running else {
            throw CRIError(.failedPrecondition, "container \(containerID) is not running")
        }
        guard !command.isEmpty else { throw CRIError.invalidArgument("exec needs a command") }
        do {
            return try containerizer.exec(id: containerID, args: command, tty: tty, stdin: stdin, stdout: stdout, stderr: stderr, resize: resize)
        } catch {
            throw CRIError(.unknown, "failed to exec in container \(containerID): \(error)")
        }
    }

    /// A TCP connection to `port` on the pod's loopback (blocking).
    public func connect(sandboxID: String, port: Int32) throws(CRIError) -> Int32 {
        let sandbox = try sandbox(sandboxID)
        guard sandbox.state == .ready else { throw CRIError(.failedPrecondition, "pod sandbox \(sandboxID) is not ready") }
        guard let port = UInt16(exactly: port), port > 0 else { throw CRIError.invalidArgument("port \(port) is out of range") }
        do {
            return try NamespacePins.connectLoopback(port: port, netns: sandbox.hostNetwork ? nil : pins(sandboxID).path(.net))
        } catch {
            throw CRIError(.unavailable, "failed to connect to port \(port) of pod sandbox \(sandboxID): \(error)")
        }
    }
}
