import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import http2 from "node:http2";
import type { AddressInfo } from "node:net";
import path from "node:path";
import { afterAll, beforeAll, describe, it } from "vitest";
import { fileURLToPath } from "node:url";
import { createFileRegistry, create, fromBinary, type DescService } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema, FileDescriptorSetSchema, type FileDescriptorProto } from "@bufbuild/protobuf/wkt";
import { createClient, type ConnectRouter } from "@connectrpc/connect";
import { Http2SessionManager, connectNodeAdapter, createGrpcTransport } from "@connectrpc/connect-node";
import * as v1 from "../../gen/es/grpc/reflection/v1/reflection_pb.js";
import * as v1alpha from "../../gen/es/grpc/reflection/v1alpha/reflection_pb.js";
import { PubSubService } from "../../gen/es/seqcast/v1/pubsub_pb.js";
import { registerHealth } from "../../src/server/health.js";
import { registerReflection } from "../../src/server/reflection.js";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const bufBin = path.join(root, "node_modules", ".bin", "buf");

interface TestServer {
  url: string;
  close(): Promise<void>;
}

/** h2c server with PubSubService (every method UNIMPLEMENTED), reflection and health. */
async function startTestServer(): Promise<TestServer> {
  const handler = connectNodeAdapter({
    routes(router: ConnectRouter) {
      router.service(PubSubService, {});
      registerReflection(router, [PubSubService]);
      registerHealth(router, { "": "SERVING", [PubSubService.typeName]: "SERVING" });
    },
  });
  const server = http2.createServer(handler);
  const sessions = new Set<http2.ServerHttp2Session>();
  server.on("session", (s) => {
    sessions.add(s);
    s.on("close", () => sessions.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const s of sessions) s.destroy();
      }),
  };
}

interface CurlResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the real buf binary asynchronously (the server lives in this process). */
function bufCurl(...args: string[]): Promise<CurlResult> {
  return new Promise((resolve, reject) => {
    execFile(bufBin, ["curl", ...args], { cwd: root, timeout: 60_000 }, (err, stdout, stderr) => {
      if (err && typeof err.code !== "number") return reject(err);
      resolve({ code: err ? (err.code as number) : 0, stdout, stderr });
    });
  });
}

/** An async iterable of requests fed by hand: lets the test interleave sends and receives. */
function pushable<T>() {
  const queue: T[] = [];
  let wake: (() => void) | undefined;
  let ended = false;
  return {
    push(v: T) {
      queue.push(v);
      wake?.();
    },
    end() {
      ended = true;
      wake?.();
    },
    async *[Symbol.asyncIterator]() {
      for (;;) {
        if (queue.length > 0) {
          yield queue.shift()!;
          continue;
        }
        if (ended) return;
        await new Promise<void>((r) => (wake = r));
        wake = undefined;
      }
    },
  };
}

async function* stream<T>(items: T[]): AsyncIterable<T> {
  yield* items;
}

function fileNames(res: v1.ServerReflectionResponse | v1alpha.ServerReflectionResponse): string[] {
  assert.equal(res.messageResponse.case, "fileDescriptorResponse", JSON.stringify(res.messageResponse));
  return res.messageResponse.value.fileDescriptorProto.map((b) => fromBinary(FileDescriptorProtoSchema, b).name);
}

function files(res: v1.ServerReflectionResponse): FileDescriptorProto[] {
  assert.equal(res.messageResponse.case, "fileDescriptorResponse");
  return res.messageResponse.value.fileDescriptorProto.map((b) => fromBinary(FileDescriptorProtoSchema, b));
}

/** Orders files so each comes after its imports; throws if an import is missing. */
function importsFirst(list: FileDescriptorProto[]): FileDescriptorProto[] {
  const byName = new Map(list.map((f) => [f.name, f]));
  const out: FileDescriptorProto[] = [];
  const done = new Set<string>();
  const visit = (name: string) => {
    if (done.has(name)) return;
    const f = byName.get(name);
    assert.ok(f, `missing import ${name}`);
    done.add(name);
    f.dependency.forEach(visit);
    out.push(f);
  };
  list.forEach((f) => visit(f.name));
  return out;
}

const reflectionServices = ["grpc.reflection.v1.ServerReflection", "grpc.reflection.v1alpha.ServerReflection"];
const expectedServices = [PubSubService.typeName, "grpc.health.v1.Health", ...reflectionServices];

describe("reflection via buf curl", () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer();
  });
  afterAll(() => server.close());

  for (const reflectProtocol of [undefined, "grpc-v1", "grpc-v1alpha"]) {
    const flag = reflectProtocol ? ["--reflect-protocol", reflectProtocol] : [];
    const label = reflectProtocol ?? "default";

    it(`--list-services (${label})`, async () => {
      const r = await bufCurl("--protocol", "grpc", "--http2-prior-knowledge", ...flag, "--list-services", server.url);
      assert.equal(r.code, 0, r.stderr);
      const listed = r.stdout.trim().split("\n").sort();
      assert.deepEqual(listed, [...expectedServices].sort());
    });

    it(`--list-methods (${label})`, async () => {
      const r = await bufCurl("--protocol", "grpc", "--http2-prior-knowledge", ...flag, "--list-methods", server.url);
      assert.equal(r.code, 0, r.stderr);
      const listed = r.stdout.trim().split("\n");
      for (const m of PubSubService.methods) assert.ok(listed.includes(`${PubSubService.typeName}/${m.name}`), m.name);
      assert.ok(listed.includes("grpc.health.v1.Health/Check"));
      assert.ok(listed.includes("grpc.health.v1.Health/Watch"));
      for (const s of reflectionServices) assert.ok(listed.includes(`${s}/ServerReflectionInfo`), s);
    });
  }

  it("health Check prints SERVING (v1 and v1alpha reflection)", async () => {
    for (const p of ["grpc-v1", "grpc-v1alpha"]) {
      const r = await bufCurl(
        "--protocol", "grpc", "--http2-prior-knowledge", "--reflect-protocol", p,
        "-d", "{}", `${server.url}/grpc.health.v1.Health/Check`,
      );
      assert.equal(r.code, 0, r.stderr);
      assert.equal(JSON.parse(r.stdout).status, "SERVING");
    }
    const svc = await bufCurl(
      "--protocol", "grpc", "--http2-prior-knowledge",
      "-d", JSON.stringify({ service: PubSubService.typeName }), `${server.url}/grpc.health.v1.Health/Check`,
    );
    assert.equal(svc.code, 0, svc.stderr);
    assert.equal(JSON.parse(svc.stdout).status, "SERVING");
  });

  it("health Check of an unknown service fails with NOT_FOUND", async () => {
    const r = await bufCurl(
      "--protocol", "grpc", "--http2-prior-knowledge",
      "-d", '{"service":"nope.v1.Nope"}', `${server.url}/grpc.health.v1.Health/Check`,
    );
    // buf curl exits with the gRPC code shifted left by 3 when the RPC fails.
    assert.equal(r.code, 5 << 3, r.stderr);
  });

  it("resolves the PubSubService schema (incl. types.proto and timestamp.proto) to call a method", async () => {
    // The test server implements no PubSubService method: reaching UNIMPLEMENTED
    // means buf curl built the request schema from reflection alone.
    const r = await bufCurl(
      "--protocol", "grpc", "--http2-prior-knowledge",
      "-d", '{"room":"r1","content":"hi","attributes":{"a":"b"}}', `${server.url}/seqcast.v1.PubSubService/Publish`,
    );
    assert.equal(r.code, 12 << 3, r.stderr);
  });
});

describe("reflection via a Connect gRPC client", () => {
  let server: TestServer;
  let sessionManager: Http2SessionManager;
  let v1Client: ReturnType<typeof createClient<typeof v1.ServerReflection>>;
  let v1alphaClient: ReturnType<typeof createClient<typeof v1alpha.ServerReflection>>;

  beforeAll(async () => {
    server = await startTestServer();
    sessionManager = new Http2SessionManager(server.url);
    const transport = createGrpcTransport({ baseUrl: server.url, sessionManager });
    v1Client = createClient(v1.ServerReflection, transport);
    v1alphaClient = createClient(v1alpha.ServerReflection, transport);
  });
  afterAll(async () => {
    sessionManager.abort();
    await server.close();
  });

  /** One request, one response, on a fresh stream. */
  async function askV1(messageRequest: v1.ServerReflectionRequest["messageRequest"], host = "") {
    const req = create(v1.ServerReflectionRequestSchema, { host, messageRequest });
    const out: v1.ServerReflectionResponse[] = [];
    for await (const res of v1Client.serverReflectionInfo(stream([req]))) out.push(res);
    assert.equal(out.length, 1);
    return out[0];
  }

  it("file_containing_symbol seqcast.v1.PubSubService returns the file and its transitive imports", async () => {
    const res = await askV1({ case: "fileContainingSymbol", value: PubSubService.typeName }, "example.test");
    assert.equal(res.validHost, "example.test");
    assert.equal(res.originalRequest?.messageRequest.case, "fileContainingSymbol");
    assert.equal(res.originalRequest?.messageRequest.value, PubSubService.typeName);
    const names = fileNames(res);
    assert.equal(names[0], "seqcast/v1/pubsub.proto", "requested file first");
    assert.deepEqual(
      [...names].sort(),
      ["google/protobuf/timestamp.proto", "seqcast/v1/pubsub.proto", "seqcast/v1/types.proto"],
    );
    // Self-contained: the returned files build a registry on their own.
    const registry = createFileRegistry(create(FileDescriptorSetSchema, { file: importsFirst(files(res)) }));
    const svc = registry.getService(PubSubService.typeName) as DescService | undefined;
    assert.ok(svc);
    assert.deepEqual(
      svc.methods.map((m) => m.name),
      PubSubService.methods.map((m) => m.name),
    );
    assert.ok(registry.getMessage("google.protobuf.Timestamp"));
    assert.ok(registry.getMessage("seqcast.v1.PresenceEntry"));
  });

  it("file_containing_symbol resolves methods, messages, nested types, fields, enums and enum values", async () => {
    const cases: [string, string][] = [
      ["seqcast.v1.PubSubService.Publish", "seqcast/v1/pubsub.proto"],
      [".seqcast.v1.PublishRequest", "seqcast/v1/pubsub.proto"],
      ["seqcast.v1.PublishRequest.AttributesEntry", "seqcast/v1/pubsub.proto"],
      ["seqcast.v1.PublishRequest.room", "seqcast/v1/pubsub.proto"],
      ["seqcast.v1.SubscribeEvent.event", "seqcast/v1/pubsub.proto"],
      ["seqcast.v1.HistoryDirection", "seqcast/v1/pubsub.proto"],
      ["seqcast.v1.StreamPosition", "seqcast/v1/types.proto"],
      ["seqcast.v1.PresenceState", "seqcast/v1/types.proto"],
      ["seqcast.v1.PRESENCE_STATE_ONLINE", "seqcast/v1/types.proto"],
      ["seqcast.v1.PresenceState.PRESENCE_STATE_ONLINE", "seqcast/v1/types.proto"],
      ["google.protobuf.Timestamp", "google/protobuf/timestamp.proto"],
      ["grpc.health.v1.Health", "grpc/health/v1/health.proto"],
      ["grpc.health.v1.Health.Watch", "grpc/health/v1/health.proto"],
      ["grpc.health.v1.HealthCheckResponse.ServingStatus", "grpc/health/v1/health.proto"],
      ["grpc.health.v1.HealthCheckResponse.SERVICE_UNKNOWN", "grpc/health/v1/health.proto"],
      ["grpc.health.v1.HealthListResponse.StatusesEntry", "grpc/health/v1/health.proto"],
      ["grpc.reflection.v1.ServerReflection", "grpc/reflection/v1/reflection.proto"],
      ["grpc.reflection.v1alpha.ServerReflection", "grpc/reflection/v1alpha/reflection.proto"],
    ];
    for (const [symbol, file] of cases) {
      const res = await askV1({ case: "fileContainingSymbol", value: symbol });
      assert.equal(fileNames(res)[0], file, symbol);
    }
  });

  it("unknown symbols, files, extensions and types yield error_response NOT_FOUND", async () => {
    const requests: v1.ServerReflectionRequest["messageRequest"][] = [
      { case: "fileContainingSymbol", value: "seqcast.v1.NoSuchThing" },
      { case: "fileContainingSymbol", value: "seqcast.v1" },
      { case: "fileByFilename", value: "seqcast/v1/nope.proto" },
      {
        case: "fileContainingExtension",
        value: create(v1.ExtensionRequestSchema, { containingType: "seqcast.v1.PublishRequest", extensionNumber: 100 }),
      },
      { case: "allExtensionNumbersOfType", value: "seqcast.v1.NoSuchMessage" },
    ];
    for (const messageRequest of requests) {
      const res = await askV1(messageRequest);
      assert.equal(res.messageResponse.case, "errorResponse", JSON.stringify(messageRequest));
      assert.equal(res.messageResponse.value.errorCode, 5);
      assert.ok(res.messageResponse.value.errorMessage.length > 0);
      assert.equal(res.originalRequest?.messageRequest.case, messageRequest.case);
    }
  });

  it("file_by_filename and all_extension_numbers_of_type", async () => {
    const types = await askV1({ case: "fileByFilename", value: "seqcast/v1/types.proto" });
    assert.deepEqual(fileNames(types), ["seqcast/v1/types.proto", "google/protobuf/timestamp.proto"]);
    const ts = await askV1({ case: "fileByFilename", value: "google/protobuf/timestamp.proto" });
    assert.deepEqual(fileNames(ts), ["google/protobuf/timestamp.proto"]);
    const ext = await askV1({ case: "allExtensionNumbersOfType", value: "seqcast.v1.PublishRequest" });
    assert.equal(ext.messageResponse.case, "allExtensionNumbersResponse");
    assert.equal(ext.messageResponse.value.baseTypeName, "seqcast.v1.PublishRequest");
    assert.deepEqual(ext.messageResponse.value.extensionNumber, []);
  });

  it("answers each request of one bidi stream as it arrives, errors included", async () => {
    const requests = pushable<v1.ServerReflectionRequest>();
    const responses = v1Client.serverReflectionInfo(requests)[Symbol.asyncIterator]();
    const ask = async (messageRequest: v1.ServerReflectionRequest["messageRequest"]) => {
      requests.push(create(v1.ServerReflectionRequestSchema, { host: "h", messageRequest }));
      const next = await responses.next();
      assert.equal(next.done, false);
      return next.value as v1.ServerReflectionResponse;
    };
    const list = await ask({ case: "listServices", value: "*" });
    assert.equal(list.messageResponse.case, "listServicesResponse");
    assert.deepEqual(list.messageResponse.value.service.map((s) => s.name).sort(), [...expectedServices].sort());
    const missing = await ask({ case: "fileContainingSymbol", value: "nope.Nope" });
    assert.equal(missing.messageResponse.case, "errorResponse");
    assert.equal(missing.messageResponse.value.errorCode, 5);
    const found = await ask({ case: "fileContainingSymbol", value: "seqcast.v1.Message" });
    assert.deepEqual(fileNames(found), ["seqcast/v1/types.proto", "google/protobuf/timestamp.proto"]);
    const unset = await ask({ case: undefined });
    assert.equal(unset.messageResponse.case, "errorResponse");
    assert.equal(unset.messageResponse.value.errorCode, 3);
    requests.end();
    assert.equal((await responses.next()).done, true);
  });

  it("v1alpha answers with the same core", async () => {
    const reqs = [
      create(v1alpha.ServerReflectionRequestSchema, { host: "a", messageRequest: { case: "listServices", value: "" } }),
      create(v1alpha.ServerReflectionRequestSchema, {
        host: "b",
        messageRequest: { case: "fileContainingSymbol", value: PubSubService.typeName },
      }),
      create(v1alpha.ServerReflectionRequestSchema, {
        messageRequest: { case: "fileContainingSymbol", value: "seqcast.v1.Missing" },
      }),
    ];
    const out: v1alpha.ServerReflectionResponse[] = [];
    for await (const res of v1alphaClient.serverReflectionInfo(stream(reqs))) out.push(res);
    assert.equal(out.length, 3);
    assert.equal(out[0].$typeName, "grpc.reflection.v1alpha.ServerReflectionResponse");
    assert.equal(out[0].validHost, "a");
    assert.equal(out[0].messageResponse.case, "listServicesResponse");
    assert.deepEqual(out[0].messageResponse.value.service.map((s) => s.name).sort(), [...expectedServices].sort());
    assert.equal(out[1].validHost, "b");
    assert.deepEqual(
      [...fileNames(out[1])].sort(),
      ["google/protobuf/timestamp.proto", "seqcast/v1/pubsub.proto", "seqcast/v1/types.proto"],
    );
    assert.equal(out[2].messageResponse.case, "errorResponse");
    assert.equal(out[2].messageResponse.value.errorCode, 5);
  });
});
