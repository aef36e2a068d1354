import KubeClient

/// The API's defaults for a Pod (`k8s.io/kubernetes/pkg/apis/core/v1/defaults.go`), which the
/// kubelet's decoder applies to a manifest as the API server applies them to a created pod: the
/// pod workers see a static pod as they see any other.
public enum StaticPodDefaults {
    public static func apply(to pod: inout Pod) {
        guard var spec = pod.spec else { return }
        if spec.restartPolicy == nil { spec.restartPolicy = "Always" }
        if spec.dnsPolicy == nil { spec.dnsPolicy = "ClusterFirst" }
        if spec.terminationGracePeriodSeconds == nil { spec.terminationGracePeriodSeconds = 30 }
        if spec.schedulerName == nil { spec.schedulerName = "default-scheduler" }
        if spec.securityContext == nil { spec.securityContext = PodSecurityContext() }
        if spec.enableServiceLinks == nil { spec.enableServiceLinks = true }
        if let volumes = spec.volumes { spec.volumes = volumes.map(defaulted) }
        let hostNetwork = spec.hostNetwork ?? false
        if let initContainers = spec.initContainers { spec.initContainers = initContainers.map { defaulted($0, hostNetwork: hostNetwork) } }
        spec.containers = spec.containers.map { defaulted($0, hostNetwork: hostNetwork) }
        pod.spec = spec
    }

    static func defaulted(_ container: Container, hostNetwork: Bool) -> Container {
        var container = container
        if container.terminationMessagePath == nil { container.terminationMessagePath = "/dev/termination-log" }
        if container.terminationMessagePolicy == nil { container.terminationMessagePolicy = "File" }
        if container.imagePullPolicy == nil, let image = container.image {
            container.imagePullPolicy = tag(of: image) == "latest" ? "Always" : "IfNotPresent"
        }
        if let ports = container.ports {
            container.ports = ports.map { port in
                var port = port
                if port.protocol == nil { port.protocol = "TCP" }
                if hostNetwork, port.hostPort == nil { port.hostPort = port.containerPort }
                return port
            }
        }
        // Requests default to limits, resource by resource.
        if let limits = container.resources?.limits, !limits.isEmpty {
            var requests = container.resources?.requests ?? [:]
            for (resource, quantity) in limits where requests[resource] == nil { requests[resource] = quantity }
            container.resources?.requests = requests
        }
        if let env = container.env {
            container.env = env.map { variable in
                var variable = variable
                if variable.valueFrom?.fieldRef != nil, variable.valueFrom?.fieldRef?.apiVersion == nil {
                    variable.valueFrom?.fieldRef?.apiVersion = "v1"
                }
                return variable
            }
        }
        container.livenessProbe = container.livenessProbe.map(defaulted)
        container.readinessProbe = container.readinessProbe.map(defaulted)
        container.startupProbe = container.startupProbe.map(defaulted)
        if var lifecycle = container.lifecycle {
            lifecycle.postStart = lifecycle.postStart.map(defaulted)
            lifecycle.preStop = lifecycle.preStop.map(defaulted)
            container.lifecycle = lifecycle
        }
        return container
    }

    static func defaulted(_ probe: Probe) -> Probe {
        var probe = probe
        if probe.timeoutSeconds == nil { probe.timeoutSeconds = 1 }
        if probe.periodSeconds == nil { probe.periodSeconds = 10 }
        if probe.successThreshold == nil { probe.successThreshold = 1 }
        if probe.failureThreshold == nil { probe.failureThreshold = 3 }
        probe.httpGet = probe.httpGet.map(defaulted)
        return probe
    }

    static func defaulted(_ handler: LifecycleHandler) -> LifecycleHandler {
        var handler = handler
        handler.httpGet = handler.httpGet.map(defaulted)
        return handler
    }

    static func defaulted(_ action: HTTPGetAction) -> HTTPGetAction {
        var action = action
        if action.path == nil { action.path = "/" }
        if action.scheme == nil { action.scheme = "HTTP" }
        return action
    }

    static func defaulted(_ volume: Volume) -> Volume {
        var volume = volume
        if volume.sourceKind == nil { volume.emptyDir = EmptyDirVolumeSource() }
        if volume.configMap != nil, volume.configMap?.defaultMode == nil { volume.configMap?.defaultMode = 0o644 }
        if volume.secret != nil, volume.secret?.defaultMode == nil { volume.secret?.defaultMode = 0o644 }
        if volume.downwardAPI != nil, volume.downwardAPI?.defaultMode == nil { volume.downwardAPI?.defaultMode = 0o644 }
        if volume.projected != nil, volume.projected?.defaultMode == nil { volume.projected?.defaultMode = 0o644 }
        if volume.hostPath != nil, volume.hostPath?.type == nil { volume.hostPath?.type = "" }
        return volume
    }

    /// The image's tag as the kubelet's `ParseImageName` reads it: `latest` when neither a tag nor
    /// a digest is given; nil with only a digest.
    static func tag(of image: String) -> String? {
        var reference = Substring(image)
        let hasDigest = reference.contains("@")
        if let at = reference.firstIndex(of: "@") { reference = reference[..<at] }
        let lastComponent = reference.split(separator: "/", omittingEmptySubsequences: false).last ?? reference
        if let colon = lastComponent.lastIndex(of: ":") { return String(lastComponent[lastComponent.index(after: colon)...]) }
        return hasDigest ? nil : "latest"
    }
}
