import { create, fromBinary, type MessageInitShape } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import {
  ServerReflectionRequestSchema as RequestSchema,
  ServerReflection,
  type ServerReflectionResponse,
} from "../../gen/grpc/reflection/v1/reflection_pb.js";

/** A grpc.reflection.v1 request, as an init object. */
export type ReflectionRequest = MessageInitShape<typeof RequestSchema>;

/**
 * A gRPC client of `grpc.reflection.v1.ServerReflection` at `baseUrl` that
 * sends `requests` on one stream and returns the answers.
 */
export function reflectionClient(baseUrl: string) {
  const client = createClient(
    ServerReflection,
    createGrpcTransport({ baseUrl }),
  );
  return async (...requests: ReflectionRequest[]) => {
    async function* input() {
      for (const request of requests) yield create(RequestSchema, request);
    }
    const responses: ServerReflectionResponse[] = [];
    for await (const response of client.serverReflectionInfo(input())) {
      responses.push(response);
    }
    return responses;
  };
}

/** The names of the files in a file_descriptor_response, in order. */
export function fileNames(response: ServerReflectionResponse | undefined) {
  const answer = response?.messageResponse;
  if (answer?.case !== "fileDescriptorResponse") {
    throw new Error(`not a file_descriptor_response: ${answer?.case}`);
  }
  return answer.value.fileDescriptorProto.map(
    (bytes) => fromBinary(FileDescriptorProtoSchema, bytes).name,
  );
}
