/**
 * gRPC server reflection (grpc.reflection.v1 and v1alpha), which lets tools
 * such as `buf curl` and grpcurl call the service without its .proto files.
 */
import {
  create,
  type DescFile,
  fromBinary,
  toBinary,
} from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, type ConnectRouter } from "@connectrpc/connect";
import * as v1 from "../gen/grpc/reflection/v1/reflection_pb.js";
import * as v1alpha from "../gen/grpc/reflection/v1alpha/reflection_pb.js";
import { indexSchema, type SchemaIndex } from "./reflection-index.js";

/**
 * Indexes the services registered on `router`, their files, `files`, the
 * reflection files, and all their dependencies.
 */
function indexRouter(
  router: ConnectRouter,
  files: readonly DescFile[],
): SchemaIndex {
  const services = router.handlers.map((handler) => handler.service);
  return indexSchema(
    services.map((service) => service.typeName),
    [
      ...files,
      ...services.map((service) => service.file),
      v1.file_grpc_reflection_v1_reflection,
      v1alpha.file_grpc_reflection_v1alpha_reflection,
    ],
  );
}

type Answer = v1.ServerReflectionResponse["messageResponse"];

/** An error_response with a gRPC status code and message. */
function errorAnswer(code: Code, message: string): Answer {
  return {
    case: "errorResponse",
    value: create(v1.ErrorResponseSchema, {
      errorCode: code,
      errorMessage: message,
    }),
  };
}

/**
 * A file_descriptor_response with `file` first, then those of its transitive
 * dependencies not yet in `sent`, the files already sent on this stream (as
 * gRPC's own servers do), or NOT_FOUND when `file` is undefined.
 */
function filesAnswer(
  file: DescFile | undefined,
  notFound: string,
  sent: Set<string>,
): Answer {
  if (file === undefined) return errorAnswer(Code.NotFound, notFound);
  const protos: Uint8Array[] = [];
  const queue = [file];
  const seen = new Set<string>();
  for (let next = queue.shift(); next !== undefined; next = queue.shift()) {
    const name = next.proto.name;
    if (seen.has(name)) continue;
    seen.add(name);
    if (next === file || !sent.has(name)) {
      protos.push(toBinary(FileDescriptorProtoSchema, next.proto));
      sent.add(name);
    }
    queue.push(...next.dependencies);
  }
  return {
    case: "fileDescriptorResponse",
    value: create(v1.FileDescriptorResponseSchema, {
      fileDescriptorProto: protos,
    }),
  };
}

/** Answers one reflection request; `sent` holds the files sent so far. */
function answer(
  index: SchemaIndex,
  request: v1.ServerReflectionRequest,
  sent: Set<string>,
): v1.ServerReflectionResponse {
  const asked = request.messageRequest;
  let messageResponse: Answer;
  switch (asked.case) {
    case "listServices":
      messageResponse = {
        case: "listServicesResponse",
        value: create(v1.ListServiceResponseSchema, {
          service: index.services.map((name) => ({ name })),
        }),
      };
      break;
    case "fileByFilename":
      messageResponse = filesAnswer(
        index.files.get(asked.value),
        `file not found: ${asked.value}`,
        sent,
      );
      break;
    case "fileContainingSymbol": {
      const name = asked.value.replace(/^\./, "");
      messageResponse = filesAnswer(
        index.symbols.get(name),
        `symbol not found: ${name}`,
        sent,
      );
      break;
    }
    case "fileContainingExtension": {
      const { containingType, extensionNumber } = asked.value;
      const extension = index.extensions
        .get(containingType)
        ?.get(extensionNumber);
      const notFound = `extension not found: ${containingType} ${extensionNumber}`;
      messageResponse = filesAnswer(extension, notFound, sent);
      break;
    }
    case "allExtensionNumbersOfType": {
      const type = asked.value;
      if (!index.messages.has(type)) {
        messageResponse = errorAnswer(
          Code.NotFound,
          `message type not found: ${type}`,
        );
        break;
      }
      const numbers = [...(index.extensions.get(type)?.keys() ?? [])].sort(
        (a, b) => a - b,
      );
      messageResponse = {
        case: "allExtensionNumbersResponse",
        value: create(v1.ExtensionNumberResponseSchema, {
          baseTypeName: type,
          extensionNumber: numbers,
        }),
      };
      break;
    }
    default:
      throw new ConnectError(
        "reflection request names no question",
        Code.InvalidArgument,
      );
  }
  return create(v1.ServerReflectionResponseSchema, {
    validHost: request.host,
    originalRequest: request,
    messageResponse,
  });
}

/**
 * Registers gRPC server reflection, `grpc.reflection.v1.ServerReflection`
 * and its predecessor `grpc.reflection.v1alpha.ServerReflection`, on
 * `router`.
 *
 * Reflection lists every service registered on `router` (itself included)
 * and describes their files, the files in `files` (for types that no
 * service reaches), and all of their transitive dependencies, well-known
 * types included. The index is built at the first reflection call, so
 * services registered after this one are listed too. Requested files come
 * with those of their dependencies not yet sent on the same stream, so a
 * client needs one round trip per symbol. An unknown file, symbol or
 * extension is answered with an error_response of code NOT_FOUND (5).
 */
export function registerReflection(
  router: ConnectRouter,
  files: readonly DescFile[],
): void {
  let index: SchemaIndex | undefined;
  const schema = () => {
    index ??= indexRouter(router, files);
    return index;
  };
  router.service(v1.ServerReflection, {
    async *serverReflectionInfo(requests) {
      const sent = new Set<string>();
      for await (const request of requests)
        yield answer(schema(), request, sent);
    },
  });
  // v1alpha has the same messages on the wire, under another package name.
  router.service(v1alpha.ServerReflection, {
    async *serverReflectionInfo(requests) {
      const sent = new Set<string>();
      for await (const alpha of requests) {
        const request = fromBinary(
          v1.ServerReflectionRequestSchema,
          toBinary(v1alpha.ServerReflectionRequestSchema, alpha),
        );
        const response = answer(schema(), request, sent);
        yield fromBinary(
          v1alpha.ServerReflectionResponseSchema,
          toBinary(v1.ServerReflectionResponseSchema, response),
        );
      }
    },
  });
}
