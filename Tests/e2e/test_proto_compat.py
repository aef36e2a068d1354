"""runtime.v1alpha2 (kubernetes 1.20.2) must be a wire-compatible subset of runtime.v1 (cri-api
0.32.3): Swiftlet serves both services with the runtime.v1 codecs, which is only right if
every v1alpha2 message, field, enum value and method exists in v1 with the same number,
name, type and label. Compared here field by field from the vendored protos."""
from google.protobuf import descriptor_pb2

FD = descriptor_pb2.FieldDescriptorProto


def load(cri):
    files = descriptor_pb2.FileDescriptorSet()
    files.ParseFromString(cri.descriptor_set.read_bytes())
    return {f.package: f for f in files.file}


def messages(file):
    found = {}

    def walk(prefix, items):
        for message in items:
            name = prefix + message.name
            found[name] = message
            walk(name + ".", message.nested_type)

    walk("", file.message_type)
    return found


def enums(file):
    found = {e.name: e for e in file.enum_type}
    for name, message in messages(file).items():
        for enum in message.enum_type:
            found[f"{name}.{enum.name}"] = enum
    return found


def local(type_name, package):
    return type_name.replace(f".{package}.", "")


def test_every_v1alpha2_message_field_is_identical_in_v1(cri):
    files = load(cri)
    old, new = messages(files["runtime.v1alpha2"]), messages(files["runtime.v1"])
    assert len(old) > 100 and len(new) >= len(old)
    problems = []
    compared = 0
    for name, message in old.items():
        if name not in new:
            problems.append(f"message {name} missing in v1")
            continue
        by_number = {f.number: f for f in new[name].field}
        for field in message.field:
            other = by_number.get(field.number)
            if other is None:
                problems.append(f"{name}.{field.name} (#{field.number}) missing in v1")
                continue
            compared += 1
            left = (field.name, field.type, field.label, local(field.type_name, "runtime.v1alpha2"))
            right = (other.name, other.type, other.label, local(other.type_name, "runtime.v1"))
            if left != right:
                problems.append(f"{name} field #{field.number}: v1alpha2 {left} != v1 {right}")
    assert not problems, "\n".join(problems)
    assert compared > 300


def test_every_v1alpha2_enum_value_is_identical_in_v1(cri):
    files = load(cri)
    old, new = enums(files["runtime.v1alpha2"]), enums(files["runtime.v1"])
    problems = []
    for name, enum in old.items():
        values = {v.number: v.name for v in new.get(name, descriptor_pb2.EnumDescriptorProto()).value}
        for value in enum.value:
            if values.get(value.number) != value.name:
                problems.append(f"{name}.{value.name} = {value.number}: v1 has {values.get(value.number)}")
    assert not problems, "\n".join(problems)


def test_every_v1alpha2_method_exists_in_v1_with_the_same_types(cri):
    files = load(cri)
    new_services = {s.name: {m.name: m for m in s.method} for s in files["runtime.v1"].service}
    problems = []
    for service in files["runtime.v1alpha2"].service:
        for method in service.method:
            other = new_services.get(service.name, {}).get(method.name)
            if other is None:
                problems.append(f"{service.name}/{method.name} missing in v1")
                continue
            left = (local(method.input_type, "runtime.v1alpha2"), local(method.output_type, "runtime.v1alpha2"),
                    method.server_streaming, method.client_streaming)
            right = (local(other.input_type, "runtime.v1"), local(other.output_type, "runtime.v1"),
                     other.server_streaming, other.client_streaming)
            if left != right:
                problems.append(f"{service.name}/{method.name}: {left} != {right}")
    assert not problems, "\n".join(problems)
