// A server that does no work: it reads each POST body and answers with a
// fixed response the size of a CreateToken response. `npm run bench:floor`
// measures it to show what Node's HTTP layers alone cost on this machine.
//
//   node bench/floor-server.mjs http1|http2-compat|http2-stream PORT
import http from "node:http";
import http2 from "node:http2";

const [kind, port] = process.argv.slice(2);
// About the size of a token response: the JWT is most of it.
const message = Buffer.alloc(600, "a");
const grpcFrame = Buffer.alloc(5 + message.length);
grpcFrame.writeUInt32BE(message.length, 1);
message.copy(grpcFrame, 5);

const servers = {
  http1: () =>
    http.createServer((req, res) => {
      req.resume();
      req.on("end", () => {
        res.writeHead(200, {
          "content-type": "application/json",
          "content-length": message.length,
        });
        res.end(message);
      });
    }),
  "http2-compat": () =>
    http2.createServer((req, res) => {
      req.resume();
      req.on("end", () => {
        res.writeHead(200, { "content-type": "application/grpc" });
        res.write(grpcFrame);
        res.addTrailers({ "grpc-status": "0" });
        res.end();
      });
    }),
  "http2-stream": () =>
    http2.createServer().on("stream", (stream) => {
      stream.resume();
      stream.on("end", () => {
        stream.respond(
          { ":status": 200, "content-type": "application/grpc" },
          { waitForTrailers: true },
        );
        stream.once("wantTrailers", () =>
          stream.sendTrailers({ "grpc-status": "0" }),
        );
        stream.end(grpcFrame);
      });
    }),
};

const create = servers[kind];
if (create === undefined || !/^\d+$/.test(port ?? "")) {
  process.stderr.write(
    `usage: floor-server.mjs ${Object.keys(servers).join("|")} PORT\n`,
  );
  process.exit(2);
}
create().listen(Number(port), "127.0.0.1");
process.on("SIGTERM", () => process.exit(0));
