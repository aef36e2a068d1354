"""The CRI server over its socket with a real grpcio client: every method of both services on
both API versions, unknown methods, malformed and oversized messages, many clients, compression."""
import concurrent.futures
import threading

import grpc
import pytest

IMPLEMENTED = {"Version", "Status", "RuntimeConfig", "UpdateRuntimeConfig", "GetContainerEvents", "ListImages", "ImageFsInfo",
               "ListPodSandbox", "ListContainers", "ListContainerStats", "ListPodSandboxStats", "ListMetricDescriptors",
               "ListPodSandboxMetrics"}
# Implemented, and an empty request is wrong for them (no id, no config).
NEED_ARGUMENTS = {"ImageStatus", "RemoveImage", "PullImage", "RunPodSandbox", "StopPodSandbox", "RemovePodSandbox",
                  "PodSandboxStatus", "CreateContainer", "StartContainer", "StopContainer", "RemoveContainer",
                  "ContainerStatus", "UpdateContainerResources", "ReopenContainerLog", "ExecSync", "ContainerStats",
                  "PodSandboxStats", "Exec", "Attach", "PortForward", "CheckpointContainer"}
# What swiftlet does not implement; the README's support table lists the same.
UNIMPLEMENTED = set()


def methods(module):
    for service in module.DESCRIPTOR.services_by_name.values():
        for method in service.methods:
            yield service, method


def call(channel, module, service, method, timeout=5):
    """Calls a method with its default request; returns (code, details, responses)."""
    request_class = getattr(module, method.input_type.name)
    response_class = getattr(module, method.output_type.name)
    path = f"/{service.full_name}/{method.name}"
    try:
        if method.server_streaming:
            stream = channel.unary_stream(path, request_serializer=request_class.SerializeToString,
                                          response_deserializer=response_class.FromString)
            responses = list(stream(request_class(), timeout=timeout))
        else:
            unary = channel.unary_unary(path, request_serializer=request_class.SerializeToString,
                                        response_deserializer=response_class.FromString)
            responses = [unary(request_class(), timeout=timeout)]
        return grpc.StatusCode.OK, "", responses
    except grpc.RpcError as error:
        return error.code(), error.details(), []


@pytest.mark.parametrize("version", ["v1", "v1alpha2"])
def test_every_method_of_both_services_is_reachable(agent, cri, version):
    module = getattr(cri, version)
    channel = agent.channel()
    seen = 0
    for service, method in methods(module):
        seen += 1
        code, details, _ = call(channel, module, service, method, timeout=1 if method.server_streaming else 5)
        path = f"/{service.full_name}/{method.name}"
        if method.name == "GetContainerEvents":
            # A live stream: open until the client's deadline, with no container events yet.
            assert code == grpc.StatusCode.DEADLINE_EXCEEDED, (path, code, details)
        elif method.name in IMPLEMENTED:
            assert code == grpc.StatusCode.OK, (path, code, details)
        elif method.name in NEED_ARGUMENTS:
            assert code == grpc.StatusCode.INVALID_ARGUMENT, (path, code, details)
        else:
            assert method.name in UNIMPLEMENTED, (path, code, details)
            assert code == grpc.StatusCode.UNIMPLEMENTED, (path, code, details)
            assert details == f"method {path} is not implemented by swiftlet"
    assert seen == (34 if version == "v1" else 27)


def test_version_answers_each_api_version(agent, cri):
    channel = agent.channel()
    v1 = cri.v1_grpc.RuntimeServiceStub(channel).Version(cri.v1.VersionRequest(version="0.1.0"))
    assert (v1.version, v1.runtime_name, v1.runtime_api_version) == ("0.1.0", "swiftlet", "v1")
    old = cri.v1alpha2_grpc.RuntimeServiceStub(channel).Version(cri.v1alpha2.VersionRequest(version="0.1.0"))
    assert (old.runtime_name, old.runtime_api_version) == ("swiftlet", "v1alpha2")
    assert old.runtime_version == v1.runtime_version and old.runtime_version.count(".") == 2


def test_v1_methods_newer_than_kubernetes_1_20_are_served_on_v1alpha2_too(agent, cri):
    """Kubelets 1.22-1.25 speak v1alpha2 with methods 1.20's proto lacks (ListPodSandboxStats);
    the messages are v1's, so the v1 stubs can call the v1alpha2 paths."""
    channel = agent.channel()
    config = channel.unary_unary("/runtime.v1alpha2.RuntimeService/RuntimeConfig",
                                 request_serializer=cri.v1.RuntimeConfigRequest.SerializeToString,
                                 response_deserializer=cri.v1.RuntimeConfigResponse.FromString)
    assert config(cri.v1.RuntimeConfigRequest()).linux.cgroup_driver == cri.v1.CGROUPFS
    code, details, payload = raw_call(channel, "/runtime.v1alpha2.RuntimeService/ListPodSandboxStats", b"")
    assert code == grpc.StatusCode.OK, details
    assert cri.v1.ListPodSandboxStatsResponse.FromString(payload).stats == []


def raw_call(channel, path, payload, timeout=5):
    unary = channel.unary_unary(path, request_serializer=lambda b: b, response_deserializer=lambda b: b)
    try:
        return grpc.StatusCode.OK, "", unary(payload, timeout=timeout)
    except grpc.RpcError as error:
        return error.code(), error.details(), None


@pytest.mark.parametrize("path,expected", [
    ("/runtime.v1.RuntimeService/NoSuchMethod", "unknown method NoSuchMethod for service runtime.v1.RuntimeService"),
    ("/runtime.v1alpha2.ImageService/NoSuchMethod",
     "unknown method NoSuchMethod for service runtime.v1alpha2.ImageService"),
    ("/runtime.v2.RuntimeService/Version", "unknown service runtime.v2.RuntimeService"),
    ("/grpc.health.v1.Health/Check", "unknown service grpc.health.v1.Health"),
])
def test_unknown_methods_and_services_are_unimplemented(agent, path, expected):
    code, details, _ = raw_call(agent.channel(), path, b"")
    assert code == grpc.StatusCode.UNIMPLEMENTED
    assert details == expected


@pytest.mark.parametrize("payload", [
    b"\xff\xff\xff\xff\xff",            # invalid tag and varint
    b"\x0a\x10v1",                      # string field claims 16 bytes, has 2 (truncated)
    b"\x0a",                            # tag without a length
    b"\x08" + b"\x80" * 11,             # varint longer than 10 bytes
    bytes(range(256)) * 4,              # noise
])
def test_malformed_requests_get_internal_and_the_server_keeps_serving(agent, cri, payload):
    channel = agent.channel()
    for path in ["/runtime.v1.RuntimeService/Version", "/runtime.v1alpha2.RuntimeService/Status",
                 "/runtime.v1.ImageService/PullImage"]:
        code, details, _ = raw_call(channel, path, payload)
        assert code == grpc.StatusCode.INTERNAL, (path, code, details)
        assert details.startswith("grpc: error unmarshalling request"), details
    assert cri.v1_grpc.RuntimeServiceStub(channel).Version(cri.v1.VersionRequest()).runtime_name == "swiftlet"


def test_truncations_of_a_real_request_never_break_the_server(agent, cri):
    channel = agent.channel()
    request = cri.v1.UpdateRuntimeConfigRequest(
        runtime_config=cri.v1.RuntimeConfig(network_config=cri.v1.NetworkConfig(pod_cidr="10.244.0.0/24"))
    ).SerializeToString()
    codes = set()
    for length in range(len(request)):
        code, details, _ = raw_call(channel, "/runtime.v1.RuntimeService/UpdateRuntimeConfig", request[:length])
        codes.add(code)
        assert code in (grpc.StatusCode.OK, grpc.StatusCode.INTERNAL, grpc.StatusCode.INVALID_ARGUMENT), (length, code, details)
    assert grpc.StatusCode.INTERNAL in codes
    assert raw_call(channel, "/runtime.v1.RuntimeService/UpdateRuntimeConfig", request)[0] == grpc.StatusCode.OK


def test_messages_over_16_mib_are_refused_and_under_it_are_served(agent, cri):
    channel = agent.channel(**{"grpc.max_send_message_length": 32 << 20, "grpc.max_receive_message_length": 32 << 20})
    stub = cri.v1_grpc.RuntimeServiceStub(channel)
    huge = cri.v1.UpdateRuntimeConfigRequest(
        runtime_config=cri.v1.RuntimeConfig(network_config=cri.v1.NetworkConfig(pod_cidr="x" * (17 << 20))))
    with pytest.raises(grpc.RpcError) as refused:
        stub.UpdateRuntimeConfig(huge, timeout=30)
    assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    # 15 MiB reaches the handler, which judges the content.
    large = cri.v1.UpdateRuntimeConfigRequest(
        runtime_config=cri.v1.RuntimeConfig(network_config=cri.v1.NetworkConfig(pod_cidr="x" * (15 << 20))))
    with pytest.raises(grpc.RpcError) as judged:
        stub.UpdateRuntimeConfig(large, timeout=30)
    assert judged.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert stub.Version(cri.v1.VersionRequest()).runtime_name == "swiftlet"


def test_64_concurrent_clients(agent, cri):
    errors = []
    barrier = threading.Barrier(64)

    def client(index):
        channel = agent.channel()
        barrier.wait()
        if index % 2:
            stub, module = cri.v1_grpc.RuntimeServiceStub(channel), cri.v1
        else:
            stub, module = cri.v1alpha2_grpc.RuntimeServiceStub(channel), cri.v1alpha2
        for _ in range(25):
            version = stub.Version(module.VersionRequest(), timeout=30)
            if version.runtime_api_version != ("v1" if index % 2 else "v1alpha2"):
                errors.append(version)
            stub.Status(module.StatusRequest(verbose=index % 4 == 0), timeout=30)
        return index

    with concurrent.futures.ThreadPoolExecutor(64) as pool:
        done = list(pool.map(client, range(64)))
    assert done == list(range(64))
    assert not errors


def test_compressed_requests_are_served(agent, cri):
    channel = grpc.insecure_channel(agent.target, compression=grpc.Compression.Gzip)
    try:
        stub = cri.v1_grpc.RuntimeServiceStub(channel)
        assert stub.Version(cri.v1.VersionRequest(version="x" * 10000)).runtime_name == "swiftlet"
    finally:
        channel.close()


def test_deadline_reaches_the_handler(agent, cri):
    stub = cri.v1_grpc.RuntimeServiceStub(agent.channel())
    with pytest.raises(grpc.RpcError) as error:
        list(stub.GetContainerEvents(cri.v1.GetEventsRequest(), timeout=0.5))
    assert error.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert agent.wait_for_log('msg="container event stream closed" reason="deadline exceeded"'), agent.log()


def test_cancellation_reaches_the_handler(agent, cri):
    stub = cri.v1_grpc.RuntimeServiceStub(agent.channel())
    stream = stub.GetContainerEvents(cri.v1.GetEventsRequest())
    assert agent.wait_for_log('msg="container event stream opened"'), agent.log()
    stream.cancel()
    assert agent.wait_for_log('msg="container event stream closed" reason=cancelled'), agent.log()
    assert stub.Version(cri.v1.VersionRequest()).runtime_name == "swiftlet"
