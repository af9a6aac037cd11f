#!/usr/bin/env node
// One call of iotexapi.APIService through Connect for ES, an independently written client: the tests'
// peer for the gateway's gRPC-web listener. scripts/install-grpc-web-client.sh copies this file into its
// cache beside node_modules and the code protoc-gen-es generated from iotex-proto, and prints its path.
//
//   node call.mjs --url http://127.0.0.1:PORT --method GetChainMeta [--request '{"json"}'] [options]
//
//   --mode grpc-web        gRPC-web, binary (application/grpc-web+proto), @connectrpc/connect-node (default)
//          grpc-web-text   gRPC-web-text (application/grpc-web-text): @connectrpc/connect-web's gRPC-web
//                          transport over Node's fetch, with the base64 layer done here (Connect has none)
//          grpc            plain gRPC over HTTP/2 (h2c for http://), @connectrpc/connect-node
//   --http2                gRPC-web over HTTP/2 (h2c for http://) instead of HTTP/1.1 (mode grpc-web only)
//   --method NAME          a method of iotexapi.APIService, by its proto name (GetAccount, StreamBlocks, ...),
//                          or Service/NAME for another service of api.proto (TransactionLogService/...)
//   --request JSON         the request message in protobuf's JSON form (default {})
//   --max N                server streams: stop after N messages (default: read to the end)
//   --header 'name: value' request metadata; repeatable
//   --timeout-ms MS        the client's own deadline, not sent on the wire (default 30000; 0: none)
//   --format json|hex      each answer as protobuf-es's canonical JSON (toJson, the default), or as hex of
//                          its binary encoding by protobuf-es (toBinary; canonical field order)
//   --emit-defaults        JSON with fields at their default values too (toJson alwaysEmitImplicit)
//   --self-test            run selftest.mjs (a Connect server in this process) and exit
//
// Output: stdout has one line per answer message (one for a unary method, up to N for a stream).
// Exit 0 when the call succeeded (a stream that ended, or reached --max). On any failure, one more line
// {"error":{"code":<gRPC status code number>,"message":"..."}} on stdout, a one-line reason on stderr,
// and exit 2; a failure found before anything was sent (bad arguments, bad --request) has "local":true
// in the error object and code 3 (INVALID_ARGUMENT); the client's own deadline gives code 4.

import { createClient, ConnectError, Code } from "@connectrpc/connect";
import { createGrpcWebTransport, createGrpcTransport } from "@connectrpc/connect-node";
import { createGrpcWebTransport as createFetchGrpcWebTransport } from "@connectrpc/connect-web";
import { fromJson, toJson, toBinary } from "@bufbuild/protobuf";
import * as api from "./gen/proto/api/api_pb.js";

const EXIT_FAILED = 2;

class LocalError extends Error {}

function parseArgs(argv) {
  const opts = { mode: "grpc-web", http2: false, request: "{}", headers: [], timeoutMs: 30000,
    format: "json", emitDefaults: false, max: undefined };
  const need = (i, flag) => {
    if (i + 1 >= argv.length) throw new LocalError(`${flag} needs a value`);
    return argv[i + 1];
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    switch (a) {
      case "--url": opts.url = need(i, a); i++; break;
      case "--mode": opts.mode = need(i, a); i++; break;
      case "--http2": opts.http2 = true; break;
      case "--method": opts.method = need(i, a); i++; break;
      case "--request": opts.request = need(i, a); i++; break;
      case "--header": opts.headers.push(need(i, a)); i++; break;
      case "--format": opts.format = need(i, a); i++; break;
      case "--emit-defaults": opts.emitDefaults = true; break;
      case "--self-test": opts.selfTest = true; break;
      case "--max": opts.max = count(need(i, a), a, 1); i++; break;
      case "--timeout-ms": opts.timeoutMs = count(need(i, a), a, 0); i++; break;
      default: throw new LocalError(`unknown argument ${JSON.stringify(a)} (see the header of call.mjs)`);
    }
  }
  if (opts.selfTest) return opts;
  if (!opts.url) throw new LocalError("--url is required");
  if (!/^https?:\/\//.test(opts.url)) throw new LocalError(`--url must start with http:// or https://: ${opts.url}`);
  if (!opts.method) throw new LocalError("--method is required");
  if (!["grpc-web", "grpc-web-text", "grpc"].includes(opts.mode)) {
    throw new LocalError(`--mode must be grpc-web, grpc-web-text or grpc, not ${JSON.stringify(opts.mode)}`);
  }
  if (opts.http2 && opts.mode !== "grpc-web") {
    throw new LocalError(`--http2 is for --mode grpc-web (grpc is always HTTP/2, grpc-web-text always HTTP/1.1)`);
  }
  if (!["json", "hex"].includes(opts.format)) throw new LocalError(`--format must be json or hex`);
  return opts;
}

function count(text, flag, min) {
  if (!/^\d+$/.test(text) || Number(text) < min) throw new LocalError(`${flag} needs a whole number >= ${min}, not ${JSON.stringify(text)}`);
  return Number(text);
}

/** The method descriptor: by proto name in APIService, or Service/Name among api.proto's services. */
function findMethod(spec) {
  const services = Object.values(api).filter((v) => v && v.kind === "service");
  let service = api.APIService;
  let name = spec;
  const slash = spec.lastIndexOf("/");
  if (slash >= 0) {
    const sname = spec.slice(0, slash).replace(/^\//, "");
    service = services.find((s) => s.typeName === sname || s.name === sname);
    if (!service) throw new LocalError(`no service ${JSON.stringify(sname)} in iotex-proto's api.proto (there are ${services.map((s) => s.typeName).join(", ")})`);
    name = spec.slice(slash + 1);
  }
  const method = service.methods.find((m) => m.name === name);
  if (!method) throw new LocalError(`no method ${JSON.stringify(name)} in ${service.typeName}`);
  if (method.methodKind !== "unary" && method.methodKind !== "server_streaming") {
    throw new LocalError(`${service.typeName}/${name} is ${method.methodKind}; gRPC-web carries unary and server-streaming calls only`);
  }
  return method;
}

function parseRequest(method, text) {
  let json;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new LocalError(`--request is not JSON: ${e.message}`);
  }
  try {
    return fromJson(method.input, json);
  } catch (e) {
    throw new LocalError(`--request is not a ${method.input.typeName} in protobuf JSON: ${e.message}`);
  }
}

function parseHeaders(list) {
  const headers = new Headers();
  for (const h of list) {
    const colon = h.indexOf(":");
    if (colon <= 0) throw new LocalError(`--header must be 'name: value', not ${JSON.stringify(h)}`);
    headers.append(h.slice(0, colon).trim(), h.slice(colon + 1).trim());
  }
  return headers;
}

function transportFor(opts) {
  const baseUrl = opts.url.replace(/\/+$/, "");
  switch (opts.mode) {
    case "grpc":
      return createGrpcTransport({ baseUrl, httpVersion: "2" });
    case "grpc-web-text":
      return createFetchGrpcWebTransport({ baseUrl, useBinaryFormat: true, fetch: grpcWebTextFetch });
    default:
      return createGrpcWebTransport({ baseUrl, httpVersion: opts.http2 ? "2" : "1.1", useBinaryFormat: true });
  }
}

// gRPC-web-text is gRPC-web with the request and response bodies in base64 (the response possibly as
// several base64 runs, each with its own padding, one per flushed chunk). Connect's transport speaks the
// binary form; this fetch turns its binary request into text and the text answer back into binary.
async function grpcWebTextFetch(url, init) {
  const headers = new Headers(init.headers);
  headers.set("content-type", "application/grpc-web-text");
  headers.set("accept", "application/grpc-web-text");
  const body = init.body == null ? init.body : Buffer.from(init.body).toString("base64");
  const res = await fetch(url, { ...init, headers, body });
  const type = res.headers.get("content-type") ?? "";
  if (/^application\/grpc-web-text(\+proto)?\s*(;|$)/i.test(type)) {
    const out = new Headers(res.headers);
    out.set("content-type", "application/grpc-web+proto");
    out.delete("content-length");
    const decoded = res.body ? res.body.pipeThrough(base64Decoder()) : null;
    return new Response(decoded, { status: res.status, statusText: res.statusText, headers: out });
  }
  if (/^application\/grpc-web/i.test(type) && !res.headers.has("grpc-status")) {
    throw new ConnectError(`asked for application/grpc-web-text, the server answered ${type}`, Code.Internal);
  }
  // A trailers-only answer (the status in the headers, no body) has no text to decode, and an answer that
  // is not gRPC-web at all (an HTTP error page) neither: Connect judges them as they are.
  return res;
}

function base64Decoder() {
  let pending = "";
  const take = (final) => {
    const chunks = [];
    let start = 0;
    // Whole 4-character groups; a group with padding ends one base64 run.
    let i = 0;
    for (; i + 4 <= pending.length; i += 4) {
      if (pending[i + 3] === "=") {
        chunks.push(Buffer.from(pending.slice(start, i + 4), "base64"));
        start = i + 4;
      }
    }
    if (start < i) chunks.push(Buffer.from(pending.slice(start, i), "base64"));
    pending = pending.slice(i);
    if (final && pending.length > 0) throw new ConnectError(`gRPC-web-text answer ends with ${pending.length} stray base64 characters`, Code.Internal);
    return Buffer.concat(chunks);
  };
  const decoder = new TextDecoder();
  return new TransformStream({
    transform(chunk, controller) {
      pending += decoder.decode(chunk, { stream: true }).replace(/\s+/g, "");
      if (/[^A-Za-z0-9+/=]/.test(pending)) throw new ConnectError("gRPC-web-text answer is not base64", Code.Internal);
      const bytes = take(false);
      if (bytes.length > 0) controller.enqueue(new Uint8Array(bytes));
    },
    flush(controller) {
      const bytes = take(true);
      if (bytes.length > 0) controller.enqueue(new Uint8Array(bytes));
    },
  });
}

function render(method, message, opts) {
  if (opts.format === "hex") return Buffer.from(toBinary(method.output, message)).toString("hex");
  return JSON.stringify(toJson(method.output, message, { alwaysEmitImplicit: opts.emitDefaults }));
}

async function call(opts, out) {
  const method = findMethod(opts.method);
  const request = parseRequest(method, opts.request);
  const headers = parseHeaders(opts.headers);
  const client = createClient(method.parent, transportFor(opts));
  const abort = new AbortController();
  let deadlinePassed = false;
  const timer = opts.timeoutMs > 0
    ? setTimeout(() => { deadlinePassed = true; abort.abort(); }, opts.timeoutMs)
    : undefined;
  try {
    if (method.methodKind === "unary") {
      out.push(render(method, await client[method.localName](request, { headers, signal: abort.signal }), opts));
      return;
    }
    if (opts.max === 0) return;
    for await (const message of client[method.localName](request, { headers, signal: abort.signal })) {
      process.stdout.write(render(method, message, opts) + "\n");
      if (opts.max !== undefined && ++opts.seen >= opts.max) {
        abort.abort();
        break;
      }
    }
  } catch (e) {
    if (deadlinePassed) throw new ConnectError(`the client's deadline of ${opts.timeoutMs} ms passed`, Code.DeadlineExceeded);
    throw e;
  } finally {
    clearTimeout(timer);
  }
}

function finish(lines, code) {
  const text = lines.length > 0 ? lines.join("\n") + "\n" : "";
  process.stdout.write(text, () => process.exit(code));
}

async function main() {
  const out = [];
  try {
    const opts = parseArgs(process.argv.slice(2));
    if (opts.selfTest) {
      const { selfTest } = await import("./selftest.mjs");
      process.exit((await selfTest()) ? 0 : 1);
    }
    opts.seen = 0;
    await call(opts, out);
    finish(out, 0);
  } catch (e) {
    const local = e instanceof LocalError;
    const err = local ? new ConnectError(e.message, Code.InvalidArgument) : ConnectError.from(e);
    const error = { code: err.code, message: err.rawMessage };
    if (local) error.local = true;
    process.stderr.write(`call.mjs: ${local ? "" : `${Code[err.code] ?? err.code}: `}${err.rawMessage}\n`);
    out.push(JSON.stringify({ error }));
    finish(out, EXIT_FAILED);
  }
}

main();
