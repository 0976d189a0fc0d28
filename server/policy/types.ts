/** Track sources a participant may publish, as LiveKit names them. */
export type TrackSourceName =
  | "camera"
  | "microphone"
  | "screen_share"
  | "screen_share_audio";

/**
 * The widest video grant a caller's tokens may carry. A request may ask for
 * less, never for more.
 */
export interface GrantPolicy {
  canPublish: boolean;
  /** When set, the only sources that may be published. */
  canPublishSources?: TrackSourceName[];
  canSubscribe: boolean;
  canPublishData: boolean;
  canUpdateOwnMetadata: boolean;
  hidden: boolean;
  recorder: boolean;
  /** Administrative grants; never allowed for end users or anonymous callers. */
  roomCreate: boolean;
  roomAdmin: boolean;
  roomList: boolean;
  roomRecord: boolean;
}

/**
 * `RoomConfiguration` fields, by their proto names, that a policy may let a
 * caller set (`name` always may be set), and `agents.deployment` for the
 * `deployment` of an agent dispatch.
 */
export const roomConfigFields = [
  "agents",
  "agents.deployment",
  "metadata",
  "tags",
  "max_participants",
  "empty_timeout",
  "departure_timeout",
  "min_playout_delay",
  "max_playout_delay",
  "sync_streams",
  "egress",
] as const;

/** One of {@link roomConfigFields}. */
export type RoomConfigField = (typeof roomConfigFields)[number];

/** What a caller's tokens may hold. */
export interface CallerPolicy {
  /** The policy's name, for logs. */
  name: string;
  /**
   * Rooms the caller may join, each an exact name, a prefix ending in `*`,
   * or a template over the caller's claims such as `team-{org}-*`; `*`
   * allows any room.
   */
  rooms: string[];
  /**
   * Whether the caller may name any `participant_identity`. End users are
   * always bound to their claim-derived identity, whatever this says.
   */
  anyIdentity: boolean;
  grant: GrantPolicy;
  /** The longest token lifetime, in seconds; longer requests are clamped. */
  maxTtlSeconds: number;
  /** Agent names that may be dispatched; `*` allows any. */
  agents: string[];
  roomConfig: {
    /** Fields that may be set; `egress` only when listed explicitly. */
    fields: RoomConfigField[];
    /** Largest metadata of one agent dispatch, in bytes. */
    agentMetadataBytes: number;
    /** Largest attributes of one agent dispatch, keys plus values. */
    agentAttributesBytes: number;
  };
  /** Participant attribute keys that may be set; `*` allows any. */
  attributeKeys: string[];
  /** Largest participant attributes, keys plus values, in bytes. */
  attributesBytes: number;
  /** Largest participant metadata, in bytes. */
  metadataBytes: number;
}
