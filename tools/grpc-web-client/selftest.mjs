#!/usr/bin/env node
// The self-test of call.mjs, without the gateway: a Connect server in this process
// (@connectrpc/connect-node's connectNodeAdapter, which serves gRPC, gRPC-web and Connect on one port)
// implements GetChainMeta and GetAccount with fixed answers and StreamBlocks with three blocks, on an
// HTTP/1.1 port and an HTTP/2 (h2c) port; a third port puts gRPC-web-text in front of the HTTP/1.1 one
// (Connect's server has no text form: base64 in, each answer chunk base64 with its own padding out).
// call.mjs runs as a separate process, as the tests run it, and each case checks its exact stdout, its
// exit code, what the server saw (content type, HTTP version, the request), and that stderr has no stack.
// Run by scripts/install-grpc-web-client.sh after an install, or: node call.mjs --self-test.

import http from "node:http";
import http2 from "node:http2";
import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import { ConnectError, Code } from "@connectrpc/connect";
import { create, toJson, toBinary } from "@bufbuild/protobuf";
import {
  APIService, GetChainMetaResponseSchema, GetAccountResponseSchema, StreamBlocksResponseSchema,
} from "./gen/proto/api/api_pb.js";

const callPath = fileURLToPath(new URL("./call.mjs", import.meta.url));

const chainMeta = create(GetChainMetaResponseSchema, {
  chainMeta: {
    height: 123456789012n, numActions: 987654n, tps: 7n, tpsFloat: 6.5, chainID: 4690,
    epoch: { num: 3n, height: 721n, gravityChainStartHeight: 18000000n },
  },
  syncStage: "synced",
  blockTime: { seconds: 1700000000n, nanos: 5000 },
});
const missing = "io1missing000000000000000000000000000000000";
const blocks = [1n, 2n, 3n].map((h) => create(StreamBlocksResponseSchema, {
  blockIdentifier: { hash: `${h}`.padStart(64, "a"), height: h },
  block: { block: { header: { core: { version: 1, height: h, txRoot: new Uint8Array([1, 2, 3, Number(h)]) } } } },
}));

const seen = [];        // per request: content type, HTTP version, path
const streams = { started: 0, aborted: 0 };

function routes(router) {
  router.service(APIService, {
    getChainMeta() {
      return chainMeta;
    },
    getAccount(req) {
      if (req.address === missing) throw new ConnectError(`account ${missing} not found`, Code.NotFound);
      return create(GetAccountResponseSchema, {
        accountMeta: { address: req.address, balance: "1000000000000000000", nonce: 4n, pendingNonce: 5n, isContract: true, contractByteCode: new Uint8Array([0x60, 0x80]) },
        blockIdentifier: { hash: "ff".repeat(32), height: 99n },
      });
    },
    async *streamBlocks(req, ctx) {
      streams.started++;
      for (const b of blocks) yield b;
      if (ctx.requestHeader.get("x-selftest-end") === "yes") return;
      if (ctx.requestHeader.get("x-selftest-fail") === "yes") throw new ConnectError("the stream broke", Code.DataLoss);
      // Like a node: no more blocks for now; the stream stays open until the client goes away.
      await new Promise((resolve) => ctx.signal.addEventListener("abort", resolve, { once: true }));
      streams.aborted++;
    },
  });
}

function recorded(handler) {
  return (req, res) => {
    seen.push({ type: req.headers["content-type"], version: req.httpVersion, path: req.url });
    handler(req, res);
  };
}

/** gRPC-web-text in front of a binary gRPC-web port. */
function textProxy(binaryPort) {
  return (req, res) => {
    const parts = [];
    req.on("data", (d) => parts.push(d)).on("end", () => {
      const type = req.headers["content-type"];
      seen.push({ type, version: req.httpVersion, path: req.url, proxy: "text" });
      if (type !== "application/grpc-web-text") {
        res.writeHead(415).end(`want application/grpc-web-text, not ${type}`);
        return;
      }
      const body = Buffer.from(Buffer.concat(parts).toString("latin1"), "base64");
      const headers = { ...req.headers, "content-type": "application/grpc-web+proto", "content-length": body.length };
      delete headers.accept;
      const up = http.request({ host: "127.0.0.1", port: binaryPort, method: req.method, path: req.url, headers }, (ur) => {
        const h = { ...ur.headers, "content-type": "application/grpc-web-text" };
        delete h["content-length"];
        res.writeHead(ur.statusCode, h);
        ur.on("data", (chunk) => res.write(chunk.toString("base64"))); // each chunk its own padded run
        ur.on("end", () => res.end());
      });
      up.on("error", (e) => res.destroy(e));
      res.on("close", () => { if (!res.writableFinished) up.destroy(); }); // the client went away
      up.end(body);
    });
  };
}

function listen(server) {
  return new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve(server.address().port)));
}

function run(args) {
  return new Promise((resolve) => {
    execFile(process.execPath, [callPath, ...args], { timeout: 20000 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === "number" ? err.code : `${err.code}/${err.signal}`) : 0, stdout, stderr });
    });
  });
}

const json = (schema, m) => JSON.stringify(toJson(schema, m));

export async function selfTest() {
  const adapter = connectNodeAdapter({ routes });
  const h1 = http.createServer(recorded(adapter));
  const h2 = http2.createServer(recorded(adapter));
  const h1Port = await listen(h1);
  const h2Port = await listen(h2);
  const text = http.createServer(textProxy(h1Port));
  const textPort = await listen(text);
  const gone = http.createServer();
  const closed = await listen(gone);   // a port that is then closed: nothing listens
  await new Promise((r) => gone.close(r));
  const u1 = `http://127.0.0.1:${h1Port}`, u2 = `http://127.0.0.1:${h2Port}`, ut = `http://127.0.0.1:${textPort}`;

  const metaLine = json(GetChainMetaResponseSchema, chainMeta) + "\n";
  const account = (addr) => json(GetAccountResponseSchema, create(GetAccountResponseSchema, {
    accountMeta: { address: addr, balance: "1000000000000000000", nonce: 4n, pendingNonce: 5n, isContract: true, contractByteCode: new Uint8Array([0x60, 0x80]) },
    blockIdentifier: { hash: "ff".repeat(32), height: 99n },
  })) + "\n";
  const blockLines = (n) => blocks.slice(0, n).map((b) => json(StreamBlocksResponseSchema, b) + "\n").join("");
  const notFound = JSON.stringify({ error: { code: Code.NotFound, message: `account ${missing} not found` } }) + "\n";

  const cases = [
    { name: "GetChainMeta, gRPC-web over HTTP/1.1", args: ["--url", u1, "--method", "GetChainMeta"], stdout: metaLine, code: 0, wire: { type: "application/grpc-web+proto", version: "1.1" } },
    { name: "GetChainMeta, gRPC-web over HTTP/2", args: ["--url", u2, "--mode", "grpc-web", "--http2", "--method", "GetChainMeta", "--request", "{}"], stdout: metaLine, code: 0, wire: { type: "application/grpc-web+proto", version: "2.0" } },
    { name: "GetChainMeta, gRPC-web-text", args: ["--url", ut, "--mode", "grpc-web-text", "--method", "GetChainMeta"], stdout: metaLine, code: 0, wire: { type: "application/grpc-web-text", version: "1.1", proxy: "text" } },
    { name: "GetChainMeta, gRPC", args: ["--url", u2, "--mode", "grpc", "--method", "GetChainMeta"], stdout: metaLine, code: 0, wire: { type: "application/grpc+proto", version: "2.0" } },
    { name: "GetChainMeta as hex", args: ["--url", u1, "--method", "GetChainMeta", "--format", "hex"], stdout: Buffer.from(toBinary(GetChainMetaResponseSchema, chainMeta)).toString("hex") + "\n", code: 0 },
    { name: "GetAccount, the request reaches the server", args: ["--url", u1, "--method", "GetAccount", "--request", '{"address":"io1abc"}'], stdout: account("io1abc"), code: 0 },
    { name: "GetAccount, gRPC-web-text", args: ["--url", ut, "--mode", "grpc-web-text", "--method", "GetAccount", "--request", '{"address":"io1xyz"}'], stdout: account("io1xyz"), code: 0 },
    { name: "an error status, gRPC-web", args: ["--url", u1, "--method", "GetAccount", "--request", JSON.stringify({ address: missing })], stdout: notFound, code: 2 },
    { name: "an error status, gRPC-web over HTTP/2", args: ["--url", u2, "--http2", "--method", "GetAccount", "--request", JSON.stringify({ address: missing })], stdout: notFound, code: 2 },
    { name: "an error status, gRPC-web-text", args: ["--url", ut, "--mode", "grpc-web-text", "--method", "GetAccount", "--request", JSON.stringify({ address: missing })], stdout: notFound, code: 2 },
    { name: "an error status, gRPC", args: ["--url", u2, "--mode", "grpc", "--method", "GetAccount", "--request", JSON.stringify({ address: missing })], stdout: notFound, code: 2 },
    { name: "a method the server does not implement", args: ["--url", u1, "--method", "SuggestGasPrice"], stdout: /^\{"error":\{"code":12,"message":"[^"]*"\}\}\n$/, code: 2 },
    { name: "StreamBlocks --max 2 of an open stream", args: ["--url", u1, "--method", "StreamBlocks", "--max", "2"], stdout: blockLines(2), code: 0 },
    { name: "StreamBlocks --max 2, HTTP/2", args: ["--url", u2, "--http2", "--method", "StreamBlocks", "--max", "2"], stdout: blockLines(2), code: 0 },
    { name: "StreamBlocks --max 2, gRPC-web-text", args: ["--url", ut, "--mode", "grpc-web-text", "--method", "StreamBlocks", "--max", "2"], stdout: blockLines(2), code: 0 },
    { name: "StreamBlocks --max 3, gRPC", args: ["--url", u2, "--mode", "grpc", "--method", "StreamBlocks", "--max", "3"], stdout: blockLines(3), code: 0 },
    { name: "StreamBlocks to its end", args: ["--url", u1, "--method", "StreamBlocks", "--max", "10", "--header", "x-selftest-end: yes"], stdout: blockLines(3), code: 0 },
    { name: "StreamBlocks to its end, gRPC-web-text", args: ["--url", ut, "--mode", "grpc-web-text", "--method", "StreamBlocks", "--header", "x-selftest-end: yes"], stdout: blockLines(3), code: 0 },
    { name: "StreamBlocks that fails after 3", args: ["--url", u1, "--method", "StreamBlocks", "--header", "x-selftest-fail: yes"], stdout: blockLines(3) + JSON.stringify({ error: { code: Code.DataLoss, message: "the stream broke" } }) + "\n", code: 2 },
    { name: "malformed --request JSON", args: ["--url", u1, "--method", "GetAccount", "--request", '{"address": '], stdout: /^\{"error":\{"code":3,"message":"--request is not JSON: [^"]+","local":true\}\}\n$/, code: 2, quiet: true },
    { name: "--request with a field the message lacks", args: ["--url", u1, "--method", "GetAccount", "--request", '{"nope": 1}'], stdout: /^\{"error":\{"code":3,"message":"--request is not a iotexapi.GetAccountRequest in protobuf JSON: (?:[^"\\]|\\.)+","local":true\}\}\n$/, code: 2, quiet: true },
    { name: "an unknown method", args: ["--url", u1, "--method", "GetNothing"], stdout: /^\{"error":\{"code":3,"message":"no method \\"GetNothing\\" in iotexapi.APIService","local":true\}\}\n$/, code: 2, quiet: true },
    { name: "nothing listening", args: ["--url", `http://127.0.0.1:${closed}`, "--method", "GetChainMeta"], stdout: /^\{"error":\{"code":14,"message":"[^"]*"\}\}\n$/, code: 2 },
    { name: "the client's deadline on an open stream", args: ["--url", u1, "--method", "StreamBlocks", "--timeout-ms", "1500"], stdout: blockLines(3) + JSON.stringify({ error: { code: Code.DeadlineExceeded, message: "the client's deadline of 1500 ms passed" } }) + "\n", code: 2 },
  ];

  let failed = 0;
  for (const c of cases) {
    const before = seen.length;
    const r = await run(c.args);
    const problems = [];
    if (r.code !== c.code) problems.push(`exit ${r.code}, want ${c.code}`);
    const okOut = c.stdout instanceof RegExp ? c.stdout.test(r.stdout) : r.stdout === c.stdout;
    if (!okOut) problems.push(`stdout ${JSON.stringify(r.stdout)}, want ${c.stdout instanceof RegExp ? c.stdout : JSON.stringify(c.stdout)}`);
    if (/\n\s+at /.test(r.stderr)) problems.push(`a stack trace on stderr: ${JSON.stringify(r.stderr)}`);
    if (r.code !== 0 && r.stderr.trim().split("\n").length !== 1) problems.push(`stderr is not one line: ${JSON.stringify(r.stderr)}`);
    if (c.quiet && seen.length !== before) problems.push(`a request was sent for a local error`);
    if (c.wire) {
      const got = seen.slice(before).find((s) => s.proxy === c.wire.proxy);
      if (!got || got.type !== c.wire.type || got.version !== c.wire.version) {
        problems.push(`the server saw ${JSON.stringify(got)}, want ${JSON.stringify(c.wire)}`);
      }
    }
    if (problems.length) failed++;
    console.error(`${problems.length ? "FAIL" : "ok  "} ${c.name}${problems.length ? ": " + problems.join("; ") : ""}`);
  }
  // Give the server a moment to see the abandoned streams go away.
  await new Promise((r) => setTimeout(r, 300));
  const open = streams.started - streams.aborted - 3; // three streams end on their own (end, end-text, fail)
  if (open !== 0) {
    failed++;
    console.error(`FAIL streams the client left: ${streams.started} started, ${streams.aborted} aborted by the client (want all but 3)`);
  } else {
    console.error(`ok   every stream the client stopped was closed (${streams.aborted} of ${streams.started})`);
  }
  for (const s of [h1, h2, text]) {
    s.closeAllConnections?.();
    s.close();
  }
  console.error(failed ? `self-test: ${failed} failed` : `self-test: all ${cases.length + 1} checks passed`);
  return failed === 0;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  selfTest().then((ok) => process.exit(ok ? 0 : 1), (e) => {
    console.error(`self-test: ${e.stack ?? e}`);
    process.exit(1);
  });
}
