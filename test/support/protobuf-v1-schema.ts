/**
 * Reads protobuf-es v1 runtime type information (as `@livekit/protocol`
 * carries it) and protobuf-es v2 descriptors into one comparable shape, and
 * checks which fields a set of v1 messages leaves at their defaults.
 */
import type { DescEnum, DescField, DescMessage } from "@bufbuild/protobuf";
import { ScalarType } from "@bufbuild/protobuf";

/** The parts of a protobuf-es v1 field that these helpers read. */
export interface V1Field {
  no: number;
  name: string;
  localName: string;
  jsonName: string;
  kind: "scalar" | "enum" | "message" | "map";
  T: unknown;
  K?: number;
  V?: { kind: "scalar" | "enum" | "message"; T: unknown };
  repeated: boolean;
  opt: boolean;
  packed: boolean;
  oneof?: { name: string; localName: string };
}

/** A protobuf-es v1 message class. */
export interface V1MessageType {
  typeName: string;
  fields: { list(): readonly V1Field[] };
}

/** A protobuf-es v1 enum. */
export interface V1EnumType {
  typeName: string;
  values: readonly { no: number; name: string }[];
}

/** One field or enum value, keyed by number, with what the wire sees. */
export type Member = { no: number } & Record<string, unknown>;

/** Every reachable message and enum, by full name, in first-reached order. */
export type Schema = Record<string, { kind: string; members: Member[] }>;

const scalarName = (t: unknown): string => ScalarType[t as ScalarType];

function v1Type(kind: string, t: unknown): string {
  return kind === "scalar"
    ? scalarName(t)
    : (t as { typeName: string }).typeName;
}

/** Collects `root` and every message and enum it reaches (protobuf-es v1). */
export function describeV1(root: V1MessageType): Schema {
  const schema: Schema = {};
  const visit = (type: V1MessageType): void => {
    if (schema[type.typeName] !== undefined) return;
    const fields = type.fields.list();
    schema[type.typeName] = { kind: "message", members: fields.map(v1Field) };
    for (const field of fields) {
      const value = field.kind === "map" ? field.V : field;
      if (value?.kind === "message") visit(value.T as V1MessageType);
      if (value?.kind !== "enum") continue;
      const e = value.T as V1EnumType;
      schema[e.typeName] ??= {
        kind: "enum",
        members: e.values.map(({ no, name }) => ({ no, name })),
      };
    }
  };
  visit(root);
  return schema;
}

function v1Field(f: V1Field): Member {
  const value = f.kind === "map" ? f.V : f;
  return {
    no: f.no,
    name: f.name,
    jsonName: f.jsonName,
    kind: f.kind === "map" ? `map<${scalarName(f.K)}, ${value?.kind}>` : f.kind,
    type: v1Type(value?.kind ?? "", value?.T),
    repeated: f.repeated,
    optional: f.opt,
    oneof: f.oneof?.name,
    packed: f.repeated && f.kind !== "message" ? f.packed : undefined,
  };
}

/** Describes generated protobuf-es v2 messages and enums the same way. */
export function describeV2(types: readonly (DescMessage | DescEnum)[]): Schema {
  const schema: Schema = {};
  for (const type of types) {
    schema[type.typeName] =
      type.kind === "message"
        ? { kind: "message", members: type.fields.map(v2Field) }
        : {
            kind: "enum",
            members: type.values.map((v) => ({ no: v.number, name: v.name })),
          };
  }
  return schema;
}

function v2Field(f: DescField): Member {
  let kind: string = f.fieldKind;
  let type: string;
  switch (f.fieldKind) {
    case "scalar":
      type = scalarName(f.scalar);
      break;
    case "list":
      kind = f.listKind;
      type = f.scalar ? scalarName(f.scalar) : (f.enum ?? f.message).typeName;
      break;
    case "map":
      kind = `map<${scalarName(f.mapKey)}, ${f.mapKind}>`;
      type = f.scalar ? scalarName(f.scalar) : (f.enum ?? f.message).typeName;
      break;
    default:
      type = (f.fieldKind === "enum" ? f.enum : f.message).typeName;
  }
  return {
    no: f.number,
    name: f.name,
    jsonName: f.jsonName,
    kind,
    type,
    repeated: f.fieldKind === "list",
    optional: f.proto.proto3Optional,
    oneof: f.oneof?.name,
    packed: f.fieldKind === "list" && kind !== "message" ? f.packed : undefined,
  };
}

/**
 * Lists every difference between two schemas, one line each, naming the
 * type and member, e.g. `livekit.S3Upload #11 only in <left label>`.
 */
export function diffSchemas(
  left: Schema,
  right: Schema,
  [leftLabel, rightLabel]: readonly [string, string] = ["left", "right"],
): string[] {
  const diffs: string[] = [];
  for (const name of new Set([...Object.keys(left), ...Object.keys(right)])) {
    const a = left[name];
    const b = right[name];
    if (a === undefined || b === undefined) {
      diffs.push(`${name} only in ${a ? leftLabel : rightLabel}`);
      continue;
    }
    const numbers = new Set([...a.members, ...b.members].map((m) => m.no));
    for (const no of numbers) {
      const x = a.members.find((m) => m.no === no);
      const y = b.members.find((m) => m.no === no);
      if (x === undefined || y === undefined) {
        diffs.push(`${name} #${no} only in ${x ? leftLabel : rightLabel}`);
      } else if (JSON.stringify(x) !== JSON.stringify(y)) {
        diffs.push(
          `${name} #${no}: ${JSON.stringify(x)} != ${JSON.stringify(y)}`,
        );
      }
    }
  }
  return diffs;
}

/** A protobuf-es v1 message instance. */
export interface V1Message {
  getType(): { typeName: string };
}

/**
 * Returns the `type.field` names, over every message `root` reaches, that
 * no message in `messages` (or below) sets to a non-default value. A
 * repeated or map field counts only when non-empty with no default entry.
 */
export function unsetFields(
  root: V1MessageType,
  messages: readonly V1Message[],
): string[] {
  const set = new Set<string>();
  for (const message of messages) markSet(message, set);
  return Object.entries(describeV1(root))
    .filter(([, type]) => type.kind === "message")
    .flatMap(([name, type]) => type.members.map((m) => `${name}.${m.name}`))
    .filter((name) => !set.has(name));
}

function markSet(message: V1Message, set: Set<string>): void {
  const type = message.getType() as V1MessageType;
  const record = message as unknown as Record<string, unknown>;
  for (const field of type.fields.list()) {
    let value = record[field.localName];
    if (field.oneof !== undefined) {
      const oneof = record[field.oneof.localName] as OneofValue;
      value = oneof.case === field.localName ? oneof.value : undefined;
    }
    const entries: unknown[] =
      field.kind === "map"
        ? Object.values(value as object)
        : field.repeated
          ? (value as unknown[])
          : [value];
    if (entries.length === 0 || !entries.every(isNonDefault)) continue;
    set.add(`${type.typeName}.${field.name}`);
    const kind = field.kind === "map" ? field.V?.kind : field.kind;
    if (kind !== "message") continue;
    for (const entry of entries) markSet(entry as V1Message, set);
  }
}

type OneofValue = { case: string | undefined; value?: unknown };

function isNonDefault(value: unknown): boolean {
  if (value instanceof Uint8Array) return value.length > 0;
  return ![undefined, "", 0, 0n, false].includes(value as never);
}
