import type { VideoGrant as SdkVideoGrant } from "livekit-server-sdk";
import { TrackSource } from "livekit-server-sdk";
import type { VideoGrant } from "../../gen/tokenservice/v1/token_service_pb.js";
import { PolicyError } from "./policy-error.js";
import type { GrantPolicy, TrackSourceName } from "./types.js";

/** The SDK's track source for each name a policy or request may use. */
const trackSources: Record<TrackSourceName, TrackSource> = {
  camera: TrackSource.CAMERA,
  microphone: TrackSource.MICROPHONE,
  screen_share: TrackSource.SCREEN_SHARE,
  screen_share_audio: TrackSource.SCREEN_SHARE_AUDIO,
};

/** Grants a token carries by default when the policy allows them. */
const defaultOn = [
  "canPublish",
  "canSubscribe",
  "canPublishData",
  "canUpdateOwnMetadata",
] as const;

/** Grants a token carries only when asked for and allowed. */
const onRequest = [
  "hidden",
  "recorder",
  "roomCreate",
  "roomAdmin",
  "roomList",
  "roomRecord",
] as const;

/**
 * Resolves the video grant of a token: the policy's, narrowed by what the
 * request asks for.
 *
 * @throws PolicyError (`permission_denied`) when the request asks for a
 * permission the policy does not give.
 * @throws PolicyError (`invalid_argument`) for an unknown track source.
 */
export function resolveGrant(
  policy: GrantPolicy,
  requested: VideoGrant | undefined,
): Omit<SdkVideoGrant, "roomJoin" | "room"> {
  const grant: Omit<SdkVideoGrant, "roomJoin" | "room"> = {};
  for (const key of defaultOn) {
    const asked = requested?.[key];
    if (asked === true && !policy[key]) deny(key);
    grant[key] = asked ?? policy[key];
  }
  for (const key of onRequest) {
    if (requested?.[key] !== true) continue;
    if (!policy[key]) deny(key);
    grant[key] = true;
  }
  const sources = resolveSources(policy, requested?.canPublishSources ?? []);
  if (sources !== undefined && grant.canPublish) {
    grant.canPublishSources = sources.map((name) => trackSources[name]);
  }
  return grant;
}

function resolveSources(
  policy: GrantPolicy,
  requested: string[],
): TrackSourceName[] | undefined {
  for (const name of requested) {
    if (!Object.hasOwn(trackSources, name)) {
      throw new PolicyError(
        "video_grant.can_publish_sources",
        `unknown track source "${name}"`,
        "invalid_argument",
      );
    }
  }
  const allowed = policy.canPublishSources;
  if (requested.length === 0) return allowed;
  for (const name of requested) {
    if (allowed !== undefined && !allowed.includes(name as TrackSourceName)) {
      deny(`can_publish_sources ${name}`);
    }
  }
  return requested as TrackSourceName[];
}

function deny(permission: string): never {
  throw new PolicyError(
    "video_grant",
    `the caller's policy does not allow ${permission}`,
  );
}
