/**
 * The index behind gRPC server reflection: which file defines each symbol,
 * file name and extension.
 */
import type { DescFile } from "@bufbuild/protobuf";
import type {
  DescriptorProto,
  EnumDescriptorProto,
  FieldDescriptorProto,
} from "@bufbuild/protobuf/wkt";

/** The files, symbols and extensions that reflection can describe. */
export interface SchemaIndex {
  /** Fully-qualified names of the services, sorted. */
  services: string[];
  /** Each file by its proto name, e.g. "google/protobuf/duration.proto". */
  files: Map<string, DescFile>;
  /** The file of each fully-qualified symbol. */
  symbols: Map<string, DescFile>;
  /** The message names, for all_extension_numbers_of_type. */
  messages: Set<string>;
  /** The file of each extension, by extended message, then by number. */
  extensions: Map<string, Map<number, DescFile>>;
}

/**
 * Adds `file` and its transitive dependencies to `index`. Symbols come from
 * the FileDescriptorProto that reflection sends, so that every name in it,
 * map entries and synthetic oneofs included, is found.
 */
function addFile(index: SchemaIndex, file: DescFile): void {
  if (index.files.has(file.proto.name)) return;
  index.files.set(file.proto.name, file);
  for (const dependency of file.dependencies) addFile(index, dependency);
  const symbol = (name: string) => index.symbols.set(name, file);
  const addExtension = (extension: FieldDescriptorProto, scope: string) => {
    symbol(`${scope}${extension.name}`);
    const extendee = extension.extendee.replace(/^\./, "");
    const byNumber = index.extensions.get(extendee) ?? new Map();
    index.extensions.set(extendee, byNumber.set(extension.number, file));
  };
  const addEnum = (desc: EnumDescriptorProto, scope: string) => {
    symbol(`${scope}${desc.name}`);
    // Enum values are scoped like their enum, not inside it.
    for (const value of desc.value) symbol(`${scope}${value.name}`);
  };
  const addMessage = (message: DescriptorProto, scope: string) => {
    const name = `${scope}${message.name}`;
    symbol(name);
    index.messages.add(name);
    for (const field of message.field) symbol(`${name}.${field.name}`);
    for (const oneof of message.oneofDecl) symbol(`${name}.${oneof.name}`);
    for (const nested of message.enumType) addEnum(nested, `${name}.`);
    for (const nested of message.nestedType) addMessage(nested, `${name}.`);
    for (const nested of message.extension) addExtension(nested, `${name}.`);
  };
  const { proto } = file;
  const scope = proto.package === "" ? "" : `${proto.package}.`;
  for (const desc of proto.enumType) addEnum(desc, scope);
  for (const desc of proto.messageType) addMessage(desc, scope);
  for (const desc of proto.extension) addExtension(desc, scope);
  for (const service of proto.service) {
    symbol(`${scope}${service.name}`);
    for (const method of service.method) {
      symbol(`${scope}${service.name}.${method.name}`);
    }
  }
}

/**
 * Indexes `files` and their transitive dependencies, listing `services`
 * (fully-qualified names), sorted and without duplicates.
 */
export function indexSchema(
  services: readonly string[],
  files: readonly DescFile[],
): SchemaIndex {
  const index: SchemaIndex = {
    services: [...new Set(services)].sort(),
    files: new Map(),
    symbols: new Map(),
    messages: new Set(),
    extensions: new Map(),
  };
  for (const file of files) addFile(index, file);
  return index;
}
