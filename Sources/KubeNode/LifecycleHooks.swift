import CRI
import Foundation
import KubeClient

#if canImport(Glibc)
import Glibc
#endif

/// postStart/preStop handlers (exec, httpGet, tcpSocket, sleep), as the kubelet's handler runner.
enum LifecycleHooks {
    /// Runs `handler`; nil on success, else what failed.
    static func run(_ handler: LifecycleHandler, containerID: String, podIP: String, calls: RuntimeCalls, timeout: Int) async -> String? {
        if let exec = handler.exec {
            do {
                let response = try await calls.runtime.execSync(
                    ExecSyncRequest(containerId: containerID, cmd: exec.command ?? [], timeout: Int64(timeout)),
                    context: RuntimeCalls.context("ExecSync"))
                if response.exitCode == 0 { return nil }
                let output = String(decoding: response.stdout + response.stderr, as: UTF8.self)
                return "command '\((exec.command ?? []).joined(separator: " "))' exited with \(response.exitCode): \(output)"
            } catch {
                return "\(error)"
            }
        }
        if let http = handler.httpGet {
            let host = http.host ?? podIP
            guard let port = http.port.intValue else { return "named ports are not supported in lifecycle hooks" }
            let result = await ProbeRunner.httpGet(host: host, port: Int(port), path: http.path ?? "/", scheme: http.scheme ?? "HTTP",
                                                   headers: http.httpHeaders ?? [], timeout: .seconds(timeout))
            return result.success ? nil : result.message
        }
        if let tcp = handler.tcpSocket {
            guard let port = tcp.port.intValue else { return "named ports are not supported in lifecycle hooks" }
            let result = await ProbeRunner.tcp(host: tcp.host ?? podIP, port: Int(port), timeout: .seconds(timeout))
            return result.success ? nil : result.message
        }
        if let sleep = handler.sleep {
            try? await Task.sleep(for: .seconds(sleep.seconds))
            return nil
        }
        return "the handler names no action"
    }
}
