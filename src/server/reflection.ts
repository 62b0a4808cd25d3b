/**
 * gRPC server reflection (grpc.reflection.v1 and grpc.reflection.v1alpha) as
 * Connect services. Both versions share one version-neutral core
 * (`ReflectionIndex`); each version only adapts its own message types.
 *
 * Protocol: https://github.com/grpc/grpc/blob/master/doc/server-reflection.md
 */
import { Code, type ConnectRouter } from "@connectrpc/connect";
import { toBinary, type DescFile, type DescService } from "@bufbuild/protobuf";
import {
  FileDescriptorProtoSchema,
  type DescriptorProto,
  type EnumDescriptorProto,
  type FieldDescriptorProto,
} from "@bufbuild/protobuf/wkt";
import { Health } from "../../gen/es/grpc/health/v1/health_pb.js";
import * as v1 from "../../gen/es/grpc/reflection/v1/reflection_pb.js";
import * as v1alpha from "../../gen/es/grpc/reflection/v1alpha/reflection_pb.js";

/** A request of either reflection version: the oneof shapes are identical. */
type AnyReflectionRequest = v1.ServerReflectionRequest | v1alpha.ServerReflectionRequest;

/**
 * The `message_response` oneof of a ServerReflectionResponse, as a message
 * init shape without type names, so it fits both versions.
 */
type ReflectionAnswer =
  | { case: "fileDescriptorResponse"; value: { fileDescriptorProto: Uint8Array[] } }
  | { case: "allExtensionNumbersResponse"; value: { baseTypeName: string; extensionNumber: number[] } }
  | { case: "listServicesResponse"; value: { service: { name: string }[] } }
  | { case: "errorResponse"; value: { errorCode: number; errorMessage: string } };

/** Everything reflection can describe, indexed once at registration. */
class ReflectionIndex {
  /** Proto file name ("seqcast/v1/pubsub.proto") -> file. */
  private readonly files = new Map<string, DescFile>();
  /** Fully-qualified symbol (no leading dot) -> declaring file. */
  private readonly symbols = new Map<string, DescFile>();
  /** "extendee.TypeName#number" -> file declaring the extension. */
  private readonly extensions = new Map<string, DescFile>();
  /** Message type name -> extension numbers known for it. */
  private readonly extensionNumbers = new Map<string, number[]>();
  /** Serialized FileDescriptorProto, computed once per file. */
  private readonly bytes = new Map<string, Uint8Array>();
  private readonly serviceNames: string[];

  constructor(services: DescService[]) {
    this.serviceNames = [...new Set(services.map((s) => s.typeName))];
    for (const service of services) this.addFile(service.file);
  }

  /** Adds a file and, transitively, its imports. The first file seen under a name wins. */
  private addFile(file: DescFile): void {
    if (this.files.has(file.proto.name)) return;
    this.files.set(file.proto.name, file);
    this.indexSymbols(file);
    for (const dep of file.dependencies) this.addFile(dep);
  }

  /**
   * Walks the FileDescriptorProto rather than protobuf-es descriptors, which
   * omit synthetic map entry messages ("pkg.Msg.AttributesEntry").
   */
  private indexSymbols(file: DescFile): void {
    const add = (name: string) => {
      if (!this.symbols.has(name)) this.symbols.set(name, file);
    };
    const addExtension = (ext: FieldDescriptorProto, scope: string) => {
      add(qualify(scope, ext.name));
      const extendee = stripDot(ext.extendee);
      const key = `${extendee}#${ext.number}`;
      if (this.extensions.has(key)) return;
      this.extensions.set(key, file);
      const numbers = this.extensionNumbers.get(extendee) ?? [];
      numbers.push(ext.number);
      this.extensionNumbers.set(extendee, numbers);
    };
    const addEnum = (e: EnumDescriptorProto, scope: string) => {
      const name = qualify(scope, e.name);
      add(name);
      for (const value of e.value) {
        // Protobuf scopes enum values as siblings of their enum
        // ("seqcast.v1.PRESENCE_STATE_ONLINE"); the enum-qualified
        // spelling is accepted as well.
        add(qualify(scope, value.name));
        add(qualify(name, value.name));
      }
    };
    const addMessage = (m: DescriptorProto, scope: string) => {
      const name = qualify(scope, m.name);
      add(name);
      if (!this.extensionNumbers.has(name)) this.extensionNumbers.set(name, []);
      for (const field of m.field) add(qualify(name, field.name));
      for (const oneof of m.oneofDecl) add(qualify(name, oneof.name));
      for (const nested of m.nestedType) addMessage(nested, name);
      for (const nested of m.enumType) addEnum(nested, name);
      for (const ext of m.extension) addExtension(ext, name);
    };
    const proto = file.proto;
    const pkg = proto.package;
    for (const m of proto.messageType) addMessage(m, pkg);
    for (const e of proto.enumType) addEnum(e, pkg);
    for (const ext of proto.extension) addExtension(ext, pkg);
    for (const service of proto.service) {
      const name = qualify(pkg, service.name);
      add(name);
      for (const method of service.method) add(qualify(name, method.name));
    }
  }

  private serialized(file: DescFile): Uint8Array {
    let b = this.bytes.get(file.proto.name);
    if (!b) {
      b = toBinary(FileDescriptorProtoSchema, file.proto);
      this.bytes.set(file.proto.name, b);
    }
    return b;
  }

  /** The file first, then every transitive import, each once. */
  private withDependencies(file: DescFile): ReflectionAnswer {
    const out: Uint8Array[] = [];
    const seen = new Set<string>();
    const visit = (f: DescFile) => {
      if (seen.has(f.proto.name)) return;
      seen.add(f.proto.name);
      out.push(this.serialized(f));
      for (const dep of f.dependencies) visit(dep);
    };
    visit(file);
    return { case: "fileDescriptorResponse", value: { fileDescriptorProto: out } };
  }

  answer(request: AnyReflectionRequest): ReflectionAnswer {
    try {
      return this.lookup(request);
    } catch (err) {
      // Never end the stream over one bad request.
      return { case: "errorResponse", value: { errorCode: Code.Internal, errorMessage: String(err) } };
    }
  }

  private lookup(request: AnyReflectionRequest): ReflectionAnswer {
    const req = request.messageRequest;
    switch (req.case) {
      case "listServices":
        return { case: "listServicesResponse", value: { service: this.serviceNames.map((name) => ({ name })) } };
      case "fileByFilename": {
        const file = this.files.get(req.value);
        return file ? this.withDependencies(file) : notFound(`file not found: ${req.value}`);
      }
      case "fileContainingSymbol": {
        const file = this.symbols.get(stripDot(req.value));
        return file ? this.withDependencies(file) : notFound(`symbol not found: ${req.value}`);
      }
      case "fileContainingExtension": {
        const { containingType, extensionNumber } = req.value;
        const file = this.extensions.get(`${stripDot(containingType)}#${extensionNumber}`);
        return file
          ? this.withDependencies(file)
          : notFound(`extension not found: ${containingType} field ${extensionNumber}`);
      }
      case "allExtensionNumbersOfType": {
        const typeName = stripDot(req.value);
        const numbers = this.extensionNumbers.get(typeName);
        return numbers
          ? { case: "allExtensionNumbersResponse", value: { baseTypeName: typeName, extensionNumber: [...numbers] } }
          : notFound(`type not found: ${req.value}`);
      }
      default:
        return {
          case: "errorResponse",
          value: { errorCode: Code.InvalidArgument, errorMessage: "no message_request set" },
        };
    }
  }
}

function notFound(errorMessage: string): ReflectionAnswer {
  return { case: "errorResponse", value: { errorCode: Code.NotFound, errorMessage } };
}

function qualify(scope: string, name: string): string {
  return scope ? `${scope}.${name}` : name;
}

function stripDot(name: string): string {
  return name.startsWith(".") ? name.slice(1) : name;
}

/**
 * The bidi handler shared by both versions: one response per request, in
 * order, as each request arrives. Errors are answered in error_response and
 * never end the stream.
 */
function reflectionHandler(index: ReflectionIndex) {
  return async function* <Req extends AnyReflectionRequest>(requests: AsyncIterable<Req>) {
    for await (const request of requests) {
      yield { validHost: request.host, originalRequest: request, messageResponse: index.answer(request) };
    }
  };
}

/**
 * Registers grpc.reflection.v1 and v1alpha ServerReflection on the router,
 * describing `services` (list_services lists these plus the reflection and
 * health services themselves) and every file reachable from them, including
 * transitive imports such as google/protobuf/timestamp.proto.
 */
export function registerReflection(router: ConnectRouter, services: DescService[]): void {
  const index = new ReflectionIndex([...services, v1.ServerReflection, v1alpha.ServerReflection, Health]);
  const handle = reflectionHandler(index);
  router.service(v1.ServerReflection, {
    serverReflectionInfo: (requests) => handle(requests),
  });
  router.service(v1alpha.ServerReflection, {
    serverReflectionInfo: (requests) => handle(requests),
  });
}
