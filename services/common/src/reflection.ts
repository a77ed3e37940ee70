import { type DescFile, type DescService, toBinary } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import type * as grpc from "@grpc/grpc-js";
import { ReflectionService } from "@grpc/reflection";
import { file_grpc_health_v1_health } from "@shadowmesh/gen/grpc/health/v1/health_pb.js";

/** Every file `file` depends on, and itself, dependencies first. */
function withDependencies(file: DescFile, seen = new Set<string>()): DescFile[] {
  if (seen.has(file.name)) {
    return [];
  }
  seen.add(file.name);
  return [...file.dependencies.flatMap((dep) => withDependencies(dep, seen)), file];
}

/**
 * Server reflection (grpc.reflection.v1 and v1alpha) so that grpcurl and `buf curl` can list and call our services
 * without .proto files. @grpc/reflection expects a proto-loader package definition; we hand it the file
 * descriptors serialized from the protobuf-es descriptors instead, so the reflected schema is exactly the compiled
 * one (health included).
 */
export function addReflection(server: grpc.Server, services: readonly DescService[]): void {
  const seen = new Set<string>();
  const files = [...services.map((service) => service.file), file_grpc_health_v1_health].flatMap((file) =>
    withDependencies(file, seen),
  );
  const fileDescriptorProtos = files.map((file) =>
    Buffer.from(toBinary(FileDescriptorProtoSchema, file.proto)),
  );
  // One entry is enough: the implementation indexes every file it is given.
  const packageDefinition = {
    files: { format: "Protocol Buffer 3 FileDescriptorProto", fileDescriptorProtos },
  };
  const names = [...services.map((service) => service.typeName), "grpc.health.v1.Health"];
  new ReflectionService(packageDefinition as never, { services: names }).addToServer(server);
}
