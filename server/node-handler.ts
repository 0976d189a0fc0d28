import type * as http from "node:http";
import type * as http2 from "node:http2";

/** A request of a `node:http` or `node:http2` server. */
export type NodeRequest = http.IncomingMessage | http2.Http2ServerRequest;

/** A response of a `node:http` or `node:http2` server. */
export type NodeResponse = http.ServerResponse | http2.Http2ServerResponse;

/** A request listener for `node:http` and `node:http2` servers alike. */
export type NodeHandler = (req: NodeRequest, res: NodeResponse) => void;
