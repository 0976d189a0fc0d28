import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { TokenVerifier } from "livekit-server-sdk";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TokenService } from "../gen/tokenservice/v1/token_service_pb.js";
import {
  startTestService,
  type TestService,
  testProject,
} from "./support/service.js";

describe("CreateToken over Connect JSON", () => {
  let service: TestService;
  beforeAll(async () => {
    service = await startTestService();
  });
  afterAll(() => service.close());

  it("mints a token for the named room and identity", async () => {
    const client = createClient(
      TokenService,
      createConnectTransport({ baseUrl: service.baseUrl, httpVersion: "1.1" }),
    );
    const response = await client.createToken({
      roomName: "room-a",
      participantIdentity: "user-1",
    });
    const claims = await new TokenVerifier(
      testProject.apiKey,
      testProject.apiSecret,
    ).verify(response.participantToken);
    expect(claims.sub).toBe("user-1");
    expect(claims.video).toMatchObject({ room: "room-a", roomJoin: true });
    expect(response.serverUrl).toBe(testProject.url);
  });
});
