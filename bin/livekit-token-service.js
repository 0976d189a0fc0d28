#!/usr/bin/env node
// Starts the service from its TypeScript sources through tsx, so that
// `npx livekit-token-service` works from a clone without a build step.
import { register } from "tsx/esm/api";

register();
await import("../server/main.ts");
