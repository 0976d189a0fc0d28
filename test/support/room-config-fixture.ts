/**
 * `livekit.RoomConfiguration` fixtures, in protobuf JSON, that set every
 * field of every message the configuration reaches to a value other than
 * its default.
 *
 * A oneof holds one member at a time, so no single configuration can set
 * them all: `roomConfigurationFixtures()` returns one configuration per
 * choice of the oneofs that occur once per configuration. Between them they
 * set every field; `unsetFields` in `./protobuf-v1-schema.ts` checks that.
 */
import type { JsonObject } from "@bufbuild/protobuf";

const proxy = (tag: string): JsonObject => ({
  url: `http://proxy-${tag}.example:3128`,
  username: `proxy-user-${tag}`,
  password: `proxy-pass-${tag}`,
});

/** One builder per member of the storage `output` oneofs. */
const uploads = {
  s3: (tag: string): JsonObject => ({
    accessKey: `AKIA${tag.toUpperCase()}`,
    secret: `s3-secret-${tag}`,
    sessionToken: `session-${tag}`,
    assumeRoleArn: `arn:aws:iam::123456789012:role/egress-${tag}`,
    assumeRoleExternalId: `external-${tag}`,
    region: "eu-central-1",
    endpoint: `https://s3-${tag}.example`,
    bucket: `bucket-${tag}`,
    forcePathStyle: true,
    metadata: { owner: `team-${tag}`, "x-note": "grüße 🎉" },
    tagging: `env=test&tag=${tag}`,
    contentDisposition: `attachment; filename="${tag}.mp4"`,
    proxy: proxy(`s3-${tag}`),
  }),
  gcp: (tag: string): JsonObject => ({
    credentials: `{"type":"service_account","project_id":"${tag}"}`,
    bucket: `gcs-${tag}`,
    proxy: proxy(`gcp-${tag}`),
  }),
  azure: (tag: string): JsonObject => ({
    accountName: `account${tag}`,
    accountKey: `azure-key-${tag}`,
    containerName: `container-${tag}`,
  }),
  aliOSS: (tag: string): JsonObject => ({
    accessKey: `ali-key-${tag}`,
    secret: `ali-secret-${tag}`,
    region: "oss-cn-hangzhou",
    endpoint: `https://oss-${tag}.example`,
    bucket: `oss-${tag}`,
  }),
};

type UploadKind = keyof typeof uploads;

/** Every member of the storage `output` oneofs, in field-number order. */
const uploadKinds: readonly UploadKind[] = ["s3", "gcp", "azure", "aliOSS"];

const upload = (kind: UploadKind, tag: string): JsonObject => ({
  [kind]: uploads[kind](`${tag}-${kind}`),
});

const encodedFile = (kind: UploadKind, tag: string): JsonObject => ({
  fileType: "OGG",
  filepath: `recordings/${tag}/{room_name}-{time}.ogg`,
  disableManifest: true,
  ...upload(kind, tag),
});

const segmentedFile = (kind: UploadKind, tag: string): JsonObject => ({
  protocol: "HLS_PROTOCOL",
  filenamePrefix: `hls/${tag}/segment`,
  playlistName: "playlist.m3u8",
  livePlaylistName: "live.m3u8",
  segmentDuration: 6,
  filenameSuffix: "TIMESTAMP",
  disableManifest: true,
  ...upload(kind, tag),
});

const imageOutput = (kind: UploadKind, tag: string): JsonObject => ({
  captureInterval: 10,
  width: 640,
  height: 360,
  filenamePrefix: `thumbs/${tag}/img`,
  filenameSuffix: "IMAGE_SUFFIX_NONE_OVERWRITE",
  imageCodec: "IC_JPEG",
  disableManifest: true,
  ...upload(kind, tag),
});

const streamOutput = (): JsonObject => ({
  protocol: "SRT",
  urls: ["srt://ingest.example:9000", "srt://backup.example:9000"],
});

/** Every member of EncodingOptions, with negative and fractional values. */
const advanced: JsonObject = {
  width: 1920,
  height: 1080,
  depth: 24,
  framerate: 60,
  audioCodec: "AAC",
  audioBitrate: 192,
  audioFrequency: 48_000,
  videoCodec: "H264_HIGH",
  videoBitrate: 6_000,
  keyFrameInterval: 2.5,
  audioQuality: -1,
  videoQuality: 3,
};

const dispatch = (n: number): JsonObject => ({
  agentName: `agent-${n}`,
  metadata: `{"prompt":"agent ${n}"}`,
  restartPolicy: "JRP_NEVER",
  deployment: `deployment-${n}`,
  attributes: { role: `assistant-${n}`, "lang.é": "de" },
});

/** The members of RoomCompositeEgressRequest's `output` oneof. */
const compositeOutputs = [
  (): JsonObject => ({ file: encodedFile("azure", "composite") }),
  (): JsonObject => ({ stream: streamOutput() }),
  (): JsonObject => ({ segments: segmentedFile("gcp", "composite") }),
];

/**
 * Returns `variant`'s configuration: every field set, with the oneofs that
 * occur once per configuration set to the `variant`-th member.
 */
function roomConfiguration(variant: number): JsonObject {
  const options: JsonObject[] = [
    { advanced },
    { preset: "PORTRAIT_H264_1080P_60" },
  ];
  const compositeOutput = compositeOutputs[variant % compositeOutputs.length];
  const trackUpload = uploadKinds[variant % uploadKinds.length];
  if (compositeOutput === undefined || trackUpload === undefined) {
    throw new Error("unreachable");
  }
  return {
    name: `room-${variant}`,
    emptyTimeout: 4_294_967_295,
    departureTimeout: 20,
    maxParticipants: 50,
    metadata: `{"topic":"fixture ${variant}","emoji":"🎥"}`,
    minPlayoutDelay: 100,
    maxPlayoutDelay: 2_000,
    syncStreams: true,
    tags: { team: "video", cost_center: "42" },
    agents: [dispatch(1), dispatch(2)],
    egress: {
      room: {
        roomName: `room-${variant}`,
        layout: "speaker",
        audioOnly: true,
        audioMixing: "DUAL_CHANNEL_ALTERNATE",
        videoOnly: true,
        customBaseUrl: "https://layouts.example/custom",
        ...compositeOutput(),
        ...options[variant % 2],
        fileOutputs: uploadKinds.map((k) => encodedFile(k, "room")),
        streamOutputs: [streamOutput()],
        segmentOutputs: uploadKinds.map((k) => segmentedFile(k, "room")),
        imageOutputs: uploadKinds.map((k) => imageOutput(k, "room")),
        webhooks: [
          {
            url: "https://hooks.example/egress",
            signingKey: "webhook-signing-key",
            filterParams: {
              includeEvents: ["egress_started", "egress_ended"],
              excludeEvents: ["egress_updated"],
            },
          },
        ],
      },
      participant: {
        ...options[(variant + 1) % 2],
        fileOutputs: [encodedFile("s3", "participant")],
        segmentOutputs: [segmentedFile("aliOSS", "participant")],
      },
      tracks: {
        filepath: "tracks/{room_name}/{track_id}",
        disableManifest: true,
        ...upload(trackUpload, "tracks"),
      },
    },
  };
}

/**
 * Returns full RoomConfiguration fixtures in protobuf JSON (JSON names, enum
 * names). The first is "the" full fixture; the others choose the other
 * members of the oneofs that occur once per configuration.
 */
export function roomConfigurationFixtures(): JsonObject[] {
  return [0, 1, 2, 3].map(roomConfiguration);
}
